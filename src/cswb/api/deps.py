"""Request dependencies shared by the API and the web pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import duckdb
from fastapi import Depends, Request

from cswb.analytics.query import DuckDBEngine
from cswb.api.reader import StoreReader


def get_reader(request: Request) -> StoreReader:
    """The app's store reader (built by :func:`cswb.api.create_app`)."""
    reader: StoreReader = request.app.state.reader
    return reader


Reader = Annotated[StoreReader, Depends(get_reader)]


def store_cursor(reader: Reader) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB cursor over the committed store, for this request only."""
    with reader.cursor() as cur:
        yield cur


Cursor = Annotated[duckdb.DuckDBPyConnection, Depends(store_cursor)]


def metric_engine(reader: Reader) -> Iterator[DuckDBEngine]:
    """An engine for the metric functions: this request's cursor and the store version's
    roll-ups (so counting metrics do not scan the calls)."""
    with reader.cursor_and_rollups() as (cur, rollups):
        yield DuckDBEngine(cur, rollups)


MetricEngine = Annotated[DuckDBEngine, Depends(metric_engine)]
