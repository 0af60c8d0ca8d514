"""Small helpers for running SQL on a DuckDB connection.

DuckDB's Python API keeps a statement's result open until it has been fetched to the end, and
refuses other work on the connection meanwhile; these helpers always fetch everything.
"""

from __future__ import annotations

from typing import Any

import duckdb


def run(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
        ) -> list[tuple[Any, ...]]:
    """Execute ``sql`` and return all its rows."""
    return con.execute(sql, params).fetchall() if params else con.execute(sql).fetchall()


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The first column of the first row of ``sql`` (None when there is no row)."""
    rows = run(con, sql, params)
    return rows[0][0] if rows else None


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A SQL quoted identifier."""
    return '"' + name.replace('"', '""') + '"'
