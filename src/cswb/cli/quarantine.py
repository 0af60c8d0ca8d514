"""``cswb quarantine``: the rows that could not become calls, for analysts to review."""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from cswb.cli.common import console, store_of
from cswb.errors import NotFoundError
from cswb.storage.sql import run

quarantine_app = typer.Typer(help="Review quarantined rows.", no_args_is_help=True)


@quarantine_app.command("list")
def list_rows(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    batch: Annotated[str | None, typer.Option(help="Only this batch id.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason.")] = None,
    limit: Annotated[int, typer.Option(help="Rows shown.")] = 50,
) -> None:
    """Quarantined rows with their reasons, and counts by source and reason."""
    con = store_of(ctx).connect()
    where, params = _filters(source, batch, reason)
    counts = run(con, f"SELECT source, reason, count(*) FROM quarantine {where} "
                      "GROUP BY ALL ORDER BY 3 DESC", params)
    if not counts:
        console.print("No quarantined rows.")
        return
    totals = Table("source", "reason", "rows", title="Quarantined rows")
    for src, why, n in counts:
        totals.add_row(plain(src), plain(why), f"{n:,}")
    console.print(totals)
    rows = run(con, f"SELECT batch_id, source_row, source, reason, detail FROM quarantine {where} "
                    f"ORDER BY source, batch_id, source_row LIMIT {int(limit)}", params)
    listing = Table("batch", "row", "source", "reason", "detail")
    listing.columns[0].no_wrap = True  # copied whole into `quarantine show`
    for batch_id, row, src, why, detail in rows:
        listing.add_row(plain(batch_id), str(row), plain(src), plain(why),
                        plain((detail or "")[:80]))
    console.print(listing)
    console.print("Show one with: cswb quarantine show BATCH ROW")


@quarantine_app.command("show")
def show(
    ctx: typer.Context,
    batch: Annotated[str, typer.Argument(help="Batch id.")],
    row: Annotated[int, typer.Argument(help="Row number in the source file.")],
) -> None:
    """One quarantined row, whole: reason, detail, its fields or raw text."""
    con = store_of(ctx).connect()
    found = run(con, "SELECT source, reason, detail, record, raw_text FROM quarantine "
                     "WHERE batch_id = ? AND source_row = ?", [batch, row])
    if not found:
        raise NotFoundError(f"no quarantined row {row} in batch {batch}")
    for source, reason, detail, record, raw_text in found:
        table = Table("field", "value",
                      title=plain(f"{source} batch {batch} row {row}: {reason}"))
        table.add_row("[b]detail[/b]", plain(detail or ""))
        for key, value in (record or {}).items():
            table.add_row(plain(key), plain("" if value is None else str(value)))
        if raw_text is not None:
            table.add_row("[b]raw text[/b]", plain(raw_text[:2000]))
        console.print(table)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(value: str) -> Text:
    """A value from a source file, shown as it is: never read as console markup (``[red]``,
    ``[link=...]``), control characters (an escape sequence that clears the screen) shown
    escaped rather than sent to the terminal."""
    return Text(_CONTROL.sub(lambda m: repr(m.group())[1:-1], value))


def _filters(source: str | None, batch: str | None, reason: str | None
             ) -> tuple[str, list[str]]:
    clauses, params = [], []
    for column, value in (("source", source), ("batch_id", batch), ("reason", reason)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def register(app: typer.Typer) -> None:
    app.add_typer(quarantine_app, name="quarantine")
