"""Entry point of the ``cswb`` command.

Each command group lives in its own module with a ``register(app)`` function; this module only
assembles them, loads settings once (``--config``) and turns cswb's errors into a clear message
and an exit status instead of a traceback.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from cswb import __version__
from cswb.errors import CswbError
from cswb.logging import configure_logging
from cswb.settings import load_settings

COMMAND_MODULES: tuple[str, ...] = (
    "cswb.cli.ingest",
    "cswb.cli.calls",
    "cswb.cli.quarantine",
    "cswb.cli.sources",
    "cswb.cli.synth",
    "cswb.cli.serve",
    "cswb.cli.classify",
    "cswb.cli.classify_store",
    "cswb.cli.respond",
    "cswb.cli.forecast",
    "cswb.cli.db",
    "cswb.cli.keys",
    "cswb.cli.linkage",
    "cswb.cli.audit",
    "cswb.cli.users",
    "cswb.cli.retention",
    "cswb.cli.report",
)

app = typer.Typer(
    name="cswb",
    help="cswb - community safety and well-being: calls for service in, insight out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cswb {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", help="TOML settings file (else CSWB_CONFIG, then environment only).",
        dir_okay=False)] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Load settings once for every command."""
    settings = load_settings(config)
    configure_logging(settings.log_level)
    ctx.obj = settings


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    """Run the CLI; a :class:`CswbError` ends with its message and exit code."""
    try:
        app()
    except CswbError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
