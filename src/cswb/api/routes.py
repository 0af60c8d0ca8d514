"""The ``/api/v1`` endpoints: thin handlers over :mod:`cswb.api.loaded`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from cswb import __version__
from cswb.api import loaded
from cswb.api.deps import Cursor, Reader
from cswb.api.models import (
    BatchPageOut,
    CallsSummaryOut,
    ErrorResponse,
    Health,
    Ready,
    SourceListOut,
)
from cswb.errors import NotFoundError, StoreError
from cswb.storage.sql import scalar

API_PREFIX = "/api/v1"

_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Invalid parameters (their values are not "
                                                  "echoed)."},
    500: {"model": ErrorResponse, "description": "Unexpected error (logged on the server)."},
    503: {"model": ErrorResponse, "description": "The analytic store cannot be read."},
}

router = APIRouter(prefix=API_PREFIX, responses=_ERRORS)


@router.get("/health", tags=["service"])
def health() -> Health:
    """The server is up (the store is not touched)."""
    return Health(version=__version__)


@router.get("/ready", tags=["service"])
def ready(reader: Reader) -> Ready:
    """The store's manifest is readable and DuckDB can query the store (else 503)."""
    manifest = reader.manifest()
    try:
        with reader.cursor(manifest) as cur:
            batches = int(scalar(cur, "SELECT count(*) FROM batches"))
    except duckdb.Error as exc:
        raise StoreError(f"the analytic store cannot be queried ({type(exc).__name__})") from exc
    return Ready(store_version=manifest.version, batches=batches)


@router.get("/batches", tags=["loaded"])
def batches(
    cur: Cursor,
    limit: Annotated[int, Query(ge=1, le=500, description="Batches per page.")] = 50,
    offset: Annotated[int, Query(ge=0, description="Batches to skip.")] = 0,
) -> BatchPageOut:
    """Ingest batches, newest first, with their reconciled row counts."""
    return BatchPageOut.model_validate(loaded.list_batches(cur, limit, offset))


@router.get("/sources", tags=["loaded"])
def sources(cur: Cursor) -> SourceListOut:
    """Per source: calls stored, first and last local date, quarantined, flagged, batches."""
    return SourceListOut.model_validate({"items": loaded.list_sources(cur)})


@router.get("/calls/summary", tags=["calls"],
            responses={404: {"model": ErrorResponse, "description": "Unknown source."}})
def calls_summary(
    cur: Cursor,
    source: Annotated[str | None, Query(max_length=200, description="Only this source.")] = None,
    date_from: Annotated[date | None, Query(alias="from",
                                            description="First local date (YYYY-MM-DD).")] = None,
    date_to: Annotated[date | None, Query(alias="to",
                                          description="Last local date (YYYY-MM-DD).")] = None,
    top: Annotated[int, Query(ge=1, le=100, description="Call types listed.")] = 10,
) -> CallsSummaryOut:
    """Calls by month (local date) and the most frequent call types, optionally filtered."""
    if date_from and date_to and date_from > date_to:
        raise RequestValidationError([{"loc": ("query", "from"), "type": "value_error",
                                       "msg": "must not be after 'to'"}])
    if source is not None and not loaded.source_exists(cur, source):
        raise NotFoundError("no source has that name; the sources are listed at /api/v1/sources")
    summary = loaded.calls_summary(cur, loaded.CallFilter(source, date_from, date_to), top)
    return CallsSummaryOut.model_validate(summary)
