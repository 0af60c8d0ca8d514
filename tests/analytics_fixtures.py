"""Hand-built calls for the analytics tests: a DuckDB ``calls`` table with known answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from cswb.analytics.query import DuckDBEngine
from cswb.storage.sql import run
from cswb.storage.tables import empty_select


def calls_engine(calls: list[dict[str, Any]]) -> DuckDBEngine:
    """An engine whose ``calls`` table has the canonical columns and the given rows."""
    con = duckdb.connect()
    run(con, "SET TimeZone = 'UTC'")
    run(con, f"CREATE TABLE calls AS {empty_select('calls')}")
    for i, call in enumerate(calls):
        row = {"call_id": f"t:{i}", "source": "t", **call}
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        con.execute(f"INSERT INTO calls ({names}) VALUES ({marks})", list(row.values()))
    return DuckDBEngine(con)


def call(day: date, hour: int | None = 12, category: str | None = None,  # noqa: PLR0917 (a row reads best positionally)
         flags: list[str] | None = None, hood: str = "North", location: str | None = None,
         response_min: float | None = None, on_scene_min: float | None = None) -> dict[str, Any]:
    """One call on ``day`` at ``hour`` (local = UTC here), with optional times in minutes."""
    received = datetime(day.year, day.month, day.day, hour or 0, tzinfo=UTC)
    row: dict[str, Any] = {"local_date": day, "local_hour": hour, "category": category,
                           "flags": flags, "neighbourhood": hood, "location": location,
                           "received_at": received}
    if response_min is not None:
        row["arrived_at"] = received + timedelta(minutes=response_min)
        if on_scene_min is not None:
            row["cleared_at"] = row["arrived_at"] + timedelta(minutes=on_scene_min)
    return row


def store_with_calls(store: Any, calls: list[dict[str, Any]]) -> None:
    """Commit ``calls`` (dicts as :func:`call` makes) to ``store`` as one calls file, with the
    classification columns filled (as the classifier will fill them)."""
    engine = calls_engine(calls)
    columns = ["call_id", "source", "source_record_id", "local_date", "local_hour", "category",
               "flags", "neighbourhood", "location", "received_at", "arrived_at", "cleared_at"]
    run(engine.con, "UPDATE calls SET source_record_id = call_id")
    with store.transaction() as tx:
        path = tx.staged_path("calls")
        run(engine.con, f"COPY (SELECT {', '.join(columns)} FROM calls) TO '{path}' "
                        "(FORMAT parquet)")
        tx.add("calls", path, columns=columns)
