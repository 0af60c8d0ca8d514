"""Request dependencies shared by the API and the web pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import duckdb
from fastapi import Depends, Request

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
