"""``cswb keys``: keys of identifying fields — generate, see their use, rotate, rehash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from cswb.cli.common import console, err_console, settings_of
from cswb.cli.operational import cli_actor, operational_of
from cswb.linkage import keys as linkage_keys
from cswb.linkage.store import LinkageStore, linkage_store_exists, open_linkage_store
from cswb.security.crypto import Keyring, generate_key
from cswb.security.keys import (
    key_usage,
    rehash,
    rehash_linkage,
    rotate,
    rotate_linkage,
    search_key_usage,
)
from cswb.settings import Settings

keys_app = typer.Typer(help="Encryption and search keys of identifying fields.",
                       no_args_is_help=True)

T = TypeVar("T")

BatchSize = Annotated[int, typer.Option(min=1, help="Records changed per transaction.")]


@keys_app.command("generate")
def generate() -> None:
    """Print a new random key (base64 of 32 bytes) for field_keys, search_key(s) or
    secret_key."""
    typer.echo(generate_key())


@keys_app.command("status")
def status(ctx: typer.Context) -> None:
    """Keys in the keyring, the current ones, and how many records each seals or hashes
    (case identities and linkage values)."""
    settings = settings_of(ctx)
    keyring = Keyring.from_settings(settings)
    ops = operational_of(ctx)
    sealed, hashed = key_usage(ops), search_key_usage(ops)
    nothing: tuple[dict[str, int], dict[str, int]] = ({}, {})
    linked_sealed, linked_hashed = _with_linkage(settings, linkage_keys.key_usage, nothing)
    console.print(_usage_table("field keys", keyring.keys, keyring.current_id, sealed,
                               linked_sealed))
    console.print(_usage_table("search keys", keyring.search_keys, keyring.search_current_id,
                               hashed, linked_hashed))


def _usage_table(title: str, ring: dict[str, bytes], current: str, cases: dict[str, int],
                 linked: dict[str, int]) -> Table:
    table = Table("key id", "in keyring", "current", "case records", "linkage values",
                  title=title)
    for key_id in sorted(set(ring) | set(cases) | set(linked)):
        table.add_row(key_id, "yes" if key_id in ring else "[red]MISSING[/red]",
                      "yes" if key_id == current else "", f"{cases.get(key_id, 0):,}",
                      f"{linked.get(key_id, 0):,}")
    return table


@keys_app.command("rotate")
def rotate_command(ctx: typer.Context, batch_size: BatchSize = 500) -> None:
    """Re-encrypt every case identity and linkage value under the current key
    (field_key_current), in batches.

    Reads keep working during the rotation; running it again re-encrypts nothing more.
    Afterwards `cswb keys status` shows nothing on the old key, which can then be removed
    from field_keys.
    """
    settings = settings_of(ctx)
    keyring, actor = Keyring.from_settings(settings), cli_actor("key rotation")
    ops = operational_of(ctx)
    report = rotate(ops, keyring, actor, batch_size,
                    progress=lambda n: err_console.print(f"re-encrypted {n:,} records"))
    console.print(f"Re-encrypted {report.re_encrypted:,} case records under key "
                  f"{report.current_key!r} in {report.batches} batches.")
    linked = _with_linkage(settings, lambda linkage: rotate_linkage(
        ops, linkage, keyring, actor, batch_size=batch_size,
        progress=lambda n: err_console.print(f"re-sealed {n:,} linkage values")), None)
    if linked is not None:
        console.print(f"Re-sealed {linked.changed:,} linkage values under key "
                      f"{linked.current_key!r} in {linked.batches} batches.")


@keys_app.command("rehash")
def rehash_command(ctx: typer.Context, batch_size: BatchSize = 500) -> None:
    """Recompute every keyed hash (case name search, linkage values) under the current search
    key (search_key_current), from the decrypted values, in batches.

    Searches keep finding every record meanwhile (they look under every search key); running
    it again recomputes nothing more. Afterwards `cswb keys status` shows nothing on the old
    search key, which can then be removed.
    """
    settings = settings_of(ctx)
    keyring, actor = Keyring.from_settings(settings), cli_actor("search key rotation")
    ops = operational_of(ctx)
    report = rehash(ops, keyring, actor, batch_size,
                    progress=lambda n: err_console.print(f"rehashed {n:,} records"))
    console.print(f"Rehashed {report.rehashed:,} case records under search key "
                  f"{report.current_search_key!r} in {report.batches} batches.")
    linked = _with_linkage(settings, lambda linkage: rehash_linkage(
        ops, linkage, keyring, actor, batch_size=batch_size,
        progress=lambda n: err_console.print(f"rehashed {n:,} linkage values")), None)
    if linked is not None:
        console.print(f"Rehashed {linked.changed:,} linkage values under search key "
                      f"{linked.current_key!r} in {linked.batches} batches "
                      f"({linked.merged:,} duplicates of a value already rehashed removed).")


def _with_linkage(settings: Settings, action: Callable[[LinkageStore], T], absent: T) -> T:
    """``action`` on the linkage store, or ``absent`` when there is none yet."""
    if not linkage_store_exists(settings):
        return absent
    linkage = open_linkage_store(settings)
    try:
        return action(linkage)
    finally:
        linkage.dispose()


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
