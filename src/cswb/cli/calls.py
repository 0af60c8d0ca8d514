"""``cswb calls``: what the analytic store holds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cswb.cli.common import console, store_of
from cswb.storage.sql import run

calls_app = typer.Typer(help="Look at the stored calls.", no_args_is_help=True)

SUMMARY_SQL = """
SELECT source, year(local_date) AS y, month(local_date) AS m, call_type, count(*) AS calls
FROM calls
GROUP BY ALL
ORDER BY source, y, m, calls DESC, call_type
"""


@calls_app.command("summary")
def summary(
    ctx: typer.Context,
    top: Annotated[int, typer.Option(help="Call types shown per source and month (0: all).")] = 10,
) -> None:
    """Counts of calls by source, month and raw call type."""
    con = store_of(ctx).connect()
    rows = run(con, SUMMARY_SQL)
    if not rows:
        console.print("The store holds no calls yet: run `cswb ingest` first.")
        return
    table = Table("source", "month", "call type", "calls", title="Calls by source, month, type")
    shown: dict[tuple[str, str], int] = {}
    totals: dict[tuple[str, str], int] = {}
    for src, year, month_number, call_type, n in rows:
        month = f"{year}-{month_number:02d}" if year is not None else "(no date)"
        key = (src, month)
        totals[key] = totals.get(key, 0) + n
        shown[key] = shown.get(key, 0) + 1
        if top == 0 or shown[key] <= top:
            table.add_row(src, month, call_type, f"{n:,}")
    for (src, month), total in totals.items():
        if top and shown[(src, month)] > top:
            table.add_row(src, month, f"(other {shown[(src, month)] - top} types)", "")
        table.add_row(src, month, "[b]all types[/b]", f"[b]{total:,}[/b]")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(calls_app, name="calls")
