"""``cswb retention run``: purge identifying details past their retention period."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cswb.cli.common import console, settings_of
from cswb.cli.operational import cli_actor, operational_of
from cswb.security.retention import run_retention

retention_app = typer.Typer(help="Retention and purge of identifying details.",
                            no_args_is_help=True)


@retention_app.command("run")
def run(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what is due.")] = False,
) -> None:
    """Purge identifying details of records closed longer ago than their retention period.

    Leaves the de-identified records; safe to run again (schedule it daily).
    """
    settings = settings_of(ctx)
    results = run_retention(operational_of(ctx), settings, cli_actor("retention schedule"),
                            dry_run=dry_run)
    table = Table("record type", "kept for (days)", "due" if dry_run else "purged",
                  title="Retention dry run" if dry_run else "Retention run")
    for result in results:
        table.add_row(result.record_type, str(result.retention_days),
                      f"{result.due if dry_run else result.purged:,}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")
