"""Test helpers: ingest a file and read the store back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cswb.ingest.mapping import builtin_mapping, parse_mapping
from cswb.ingest.pipeline import BatchSummary, ingest_file
from cswb.settings import Settings
from cswb.storage import AnalyticStore
from cswb.storage.sql import run


def ingest_builtin(store: AnalyticStore, settings: Settings, name: str,
                   path: Path) -> BatchSummary:
    """Ingest ``path`` with the built-in mapping ``name``."""
    return ingest_file(path, builtin_mapping(name), store, settings)


def ingest_with(store: AnalyticStore, settings: Settings, mapping: dict[str, Any],
                path: Path) -> BatchSummary:
    """Ingest ``path`` with a mapping given as a dictionary."""
    return ingest_file(path, parse_mapping(mapping), store, settings)


def rows(store: AnalyticStore, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of a query over the store's views."""
    con = store.connect()
    try:
        return run(con, sql, params)
    finally:
        con.close()


def one(store: AnalyticStore, sql: str, params: list[Any] | None = None) -> Any:
    """The single value of a query over the store's views."""
    result = rows(store, sql, params)
    assert len(result) == 1 and len(result[0]) == 1, result
    return result[0][0]


def table_digest(store: AnalyticStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: equal digests mean identical store contents."""
    from cswb.storage.tables import TABLES

    con = store.connect()
    try:
        return {t: sorted(map(repr, run(con, f"SELECT * FROM {t}"))) for t in TABLES}
    finally:
        con.close()


def rewrite_parquet(path: Path, select: str) -> None:
    """Replace the Parquet file ``path`` by ``SELECT <select> FROM`` itself (to fake old or
    damaged store files)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"COPY (SELECT {select} FROM read_parquet('{path}')) "
                    f"TO '{path}.tmp' (FORMAT parquet)").fetchall()
    finally:
        con.close()
    Path(f"{path}.tmp").replace(path)
