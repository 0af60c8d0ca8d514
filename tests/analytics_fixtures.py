"""Hand-built calls for the analytics tests: a DuckDB ``calls`` table with known answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from cswb.analytics.query import DuckDBEngine
from cswb.domain.calls import class_key_sql
from cswb.storage.sql import run
from cswb.storage.tables import TABLES, empty_select


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
    """Commit ``calls`` (dicts as :func:`call` makes) to ``store`` as one calls file, classified.

    As ingest does, each call stores a class key and the store's call_classes table holds one
    classification per key: here a call's class is its (category, flags), spelled as its call
    type, so the calls view reads back exactly the category and flags given.
    """
    engine = calls_engine(calls)
    columns = ["call_id", "source", "source_record_id", "initial_call_type", "class_key",
               "local_date", "local_hour", "neighbourhood", "location", "received_at",
               "arrived_at", "cleared_at"]
    key = class_key_sql({"source": "source", "initial_call_type": "initial_call_type"})
    run(engine.con, "UPDATE calls SET source_record_id = call_id, initial_call_type = "
                    "category || '|' || array_to_string(coalesce(flags, []), ';')")
    run(engine.con, f"UPDATE calls SET class_key = {key}")
    classes = ", ".join(
        f"CAST({expr} AS {sql_type}) AS {name}" for name, sql_type in TABLES["call_classes"]
        for expr in [_CLASS_VALUES.get(name, "NULL")])
    with store.transaction() as tx:
        path = tx.staged_path("calls")
        run(engine.con, f"COPY (SELECT {', '.join(columns)} FROM calls) TO '{path}' "
                        "(FORMAT parquet)")
        tx.add("calls", path, columns=columns)
        path = tx.staged_path("call_classes")
        run(engine.con, f"COPY (SELECT {classes} FROM (SELECT DISTINCT class_key, source, "
                        "initial_call_type, category, flags FROM calls "
                        f"WHERE category IS NOT NULL)) TO '{path}' (FORMAT parquet)")
        tx.add("call_classes", path)


_CLASS_VALUES = {
    "class_key": "class_key", "source": "source", "initial_call_type": "initial_call_type",
    "category": "category", "flags": "flags", "confidence": "1.0", "decided_by": "'test'",
    "taxonomy_version": "'1'", "review": "false", "classifier_version": "'test'",
    "classified_at": "now()",
}
