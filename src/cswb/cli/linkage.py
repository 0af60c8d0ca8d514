"""``cswb linkage``: the linkage zone, in counts only (never a value)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from cswb.cli.common import console, settings_of, store_of
from cswb.linkage.store import open_linkage_store

linkage_app = typer.Typer(help="The linkage zone: identifying values kept apart from the calls.",
                          no_args_is_help=True)


@linkage_app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Identifying values per source and column (counts, never values).

    Batches a crashed ingest left half-done are settled first, as the analytic store decides:
    identifiers of a batch it holds are committed, those of a failed batch deleted.
    """
    settings = settings_of(ctx)
    store = store_of(ctx)
    linkage = open_linkage_store(settings)
    try:
        with store.transaction():
            kept, dropped = linkage.recover(f["batch_id"]
                                            for f in store.read_manifest().files("batches"))
        counts = linkage.status()
    finally:
        linkage.dispose()
    if as_json:
        typer.echo(json.dumps({"store": linkage.safe_url,
                               "columns": [asdict(c) for c in counts],
                               "recovered": {"committed": kept, "deleted": dropped}}, indent=2))
        return
    table = Table("source", "column", "kind", "values", "records", "distinct values",
                  title=f"linkage zone ({linkage.safe_url})")
    for c in counts:
        table.add_row(c.source, c.column_name, c.kind, f"{c.values:,}", f"{c.records:,}",
                      f"{c.distinct_hashes:,}")
    if kept or dropped:
        table.caption = (f"settled interrupted batches: {kept:,} values committed, "
                         f"{dropped:,} of failed batches deleted")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(linkage_app, name="linkage")
