"""``cswb keys``: field-encryption keys — generate, see their use, rotate."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cswb.cli.common import console, err_console, settings_of
from cswb.cli.operational import cli_actor, operational_of
from cswb.security.crypto import Keyring, generate_key
from cswb.security.keys import key_usage, rotate

keys_app = typer.Typer(help="Encryption keys of identifying fields.", no_args_is_help=True)


@keys_app.command("generate")
def generate() -> None:
    """Print a new random key (base64 of 32 bytes) for field_keys, search_key or secret_key."""
    typer.echo(generate_key())


@keys_app.command("status")
def status(ctx: typer.Context) -> None:
    """Keys in the keyring, the current one, and how many records each seals."""
    keyring = Keyring.from_settings(settings_of(ctx))
    usage = key_usage(operational_of(ctx))
    table = Table("key id", "in keyring", "current", "records sealed")
    for key_id in sorted(set(keyring.keys) | set(usage)):
        table.add_row(key_id, "yes" if key_id in keyring.keys else "[red]MISSING[/red]",
                      "yes" if key_id == keyring.current_id else "", f"{usage.get(key_id, 0):,}")
    console.print(table)


@keys_app.command("rotate")
def rotate_command(
    ctx: typer.Context,
    batch_size: Annotated[int, typer.Option(min=1, help="Records re-encrypted per "
                                            "transaction.")] = 500,
) -> None:
    """Re-encrypt every record under the current key (field_key_current), in batches.

    Reads keep working during the rotation. Afterwards `cswb keys status` shows no record on
    the old key, which can then be removed from field_keys.
    """
    keyring = Keyring.from_settings(settings_of(ctx))
    report = rotate(operational_of(ctx), keyring, cli_actor("key rotation"), batch_size,
                    progress=lambda n: err_console.print(f"re-encrypted {n:,} records"))
    console.print(f"Re-encrypted {report.re_encrypted:,} records under key "
                  f"{report.current_key!r} in {report.batches} batches.")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
