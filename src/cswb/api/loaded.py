"""What was loaded: batches, sources and call counts, as plain queries over a store connection.

These functions are the service behind ``/api/v1/batches``, ``/api/v1/sources``,
``/api/v1/calls/summary``, the "What was loaded" page and ``cswb demo``'s summary. They take a
DuckDB connection (or cursor) whose views are the store's tables and return small frozen
dataclasses holding counts and provenance only: never a field of a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from cswb.storage.sql import run, scalar

Connection = duckdb.DuckDBPyConnection


@dataclass(frozen=True)
class BatchRows:
    """The reconciled row counts of one batch."""

    read: int
    inserted: int
    updated: int
    unchanged: int
    duplicate: int
    quarantined: int
    flagged: int

    @property
    def stored(self) -> int:
        """Rows that became a new call or a new version of a stored call."""
        return self.inserted + self.updated

    @property
    def duplicates(self) -> int:
        """Rows already stored unchanged or repeated within the file."""
        return self.unchanged + self.duplicate

    @property
    def reconciles(self) -> bool:
        """Every row read is counted exactly once: read = stored + duplicates + quarantined."""
        return self.read == self.stored + self.duplicates + self.quarantined


@dataclass(frozen=True)
class Batch:
    """One ingest batch: its file, when it ran and what happened to its rows."""

    batch_id: str
    source: str
    agency: str | None
    file_name: str
    file_format: str | None
    file_bytes: int | None
    file_sha256: str | None
    started_at: datetime | None
    finished_at: datetime | None
    cswb_version: str | None
    rows: BatchRows

    @property
    def reconciles(self) -> bool:
        return self.rows.reconciles


@dataclass(frozen=True)
class BatchPage:
    """A page of batches, newest first, with the total number of batches."""

    total: int
    limit: int
    offset: int
    items: list[Batch]


@dataclass(frozen=True)
class Source:
    """What the store holds for one source."""

    source: str
    agency: str | None
    calls: int
    first_date: date | None
    last_date: date | None
    quarantined: int
    flagged: int
    batches: int
    last_loaded_at: datetime | None


@dataclass(frozen=True)
class MonthCount:
    """Calls in one calendar month (``YYYY-MM``) of the calls' local dates."""

    month: str
    calls: int


@dataclass(frozen=True)
class CallTypeCount:
    """Calls of one (raw) call type."""

    call_type: str
    calls: int


@dataclass(frozen=True)
class CallFilter:
    """Which calls a summary counts; ``None`` means no restriction."""

    source: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def where(self) -> tuple[str, list[Any]]:
        """SQL ``WHERE`` clause and its parameters."""
        clauses, params = ["true"], []
        for clause, value in (("source = ?", self.source), ("local_date >= ?", self.date_from),
                              ("local_date <= ?", self.date_to)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class CallsSummary:
    """Counts of the filtered calls by month (gaps filled with 0) and by top call types."""

    filter: CallFilter
    total: int
    months: list[MonthCount] = field(default_factory=list)
    call_types: list[CallTypeCount] = field(default_factory=list)
    other_call_types: int = 0

    @property
    def busiest_month(self) -> int:
        return max((m.calls for m in self.months), default=0)


_BATCH_COLUMNS = """batch_id, source, agency, file_name, file_format, file_bytes, file_sha256,
    started_at, finished_at, cswb_version, rows_read, rows_inserted, rows_updated,
    rows_unchanged, rows_duplicate, rows_quarantined, rows_flagged"""


def list_batches(con: Connection, limit: int = 50, offset: int = 0) -> BatchPage:
    """Batches, newest first, ``limit`` of them after skipping ``offset``."""
    total = int(scalar(con, "SELECT count(*) FROM batches"))
    rows = run(con, f"SELECT {_BATCH_COLUMNS} FROM batches "
                    "ORDER BY started_at DESC, batch_id DESC LIMIT ? OFFSET ?", [limit, offset])
    return BatchPage(total=total, limit=limit, offset=offset, items=[_batch(r) for r in rows])


def _batch(row: tuple[Any, ...]) -> Batch:
    (batch_id, source, agency, file_name, file_format, file_bytes, file_sha256, started_at,
     finished_at, cswb_version, *counts) = row
    return Batch(batch_id=batch_id, source=source, agency=agency, file_name=file_name,
                 file_format=file_format, file_bytes=file_bytes, file_sha256=file_sha256,
                 started_at=_utc(started_at), finished_at=_utc(finished_at),
                 cswb_version=cswb_version, rows=BatchRows(*(int(n or 0) for n in counts)))


_SOURCES_SQL = """
WITH b AS (
    SELECT source, arg_max(agency, started_at) AS agency, count(*) AS batches,
           max(finished_at) AS last_loaded_at
    FROM batches GROUP BY source),
c AS (
    SELECT source, count(*) AS calls, min(local_date) AS first_date,
           max(local_date) AS last_date,
           count(*) FILTER (WHERE coalesce(len(dq_flags), 0) > 0) AS flagged
    FROM calls GROUP BY source),
q AS (SELECT source, count(*) AS quarantined FROM quarantine GROUP BY source)
SELECT b.source, b.agency, coalesce(c.calls, 0), c.first_date, c.last_date,
       coalesce(q.quarantined, 0), coalesce(c.flagged, 0), b.batches, b.last_loaded_at
FROM b LEFT JOIN c USING (source) LEFT JOIN q USING (source)
ORDER BY b.source
"""


def list_sources(con: Connection) -> list[Source]:
    """Every source that has at least one batch, with its calls, dates and problems."""
    return [Source(src, agency, int(calls), first, last, int(quar), int(flagged), int(batches),
                   _utc(loaded))
            for src, agency, calls, first, last, quar, flagged, batches, loaded
            in run(con, _SOURCES_SQL)]


def source_exists(con: Connection, source: str) -> bool:
    """Whether any batch of ``source`` was loaded."""
    return bool(scalar(con, "SELECT count(*) FROM batches WHERE source = ?", [source]))


def calls_summary(con: Connection, where: CallFilter, top: int = 10) -> CallsSummary:
    """Calls matching ``where`` counted by month and by the ``top`` most frequent call types."""
    clause, params = where.where()
    total = int(scalar(con, f"SELECT count(*) FROM calls WHERE {clause}", params))
    # year * 100 + month groups several times faster than formatting each date as text.
    by_month = [(f"{ym // 100:04d}-{ym % 100:02d}", n) for ym, n in run(con, f"""
        SELECT year(local_date) * 100 + month(local_date) AS ym, count(*)
        FROM calls WHERE {clause} AND local_date IS NOT NULL GROUP BY 1 ORDER BY 1""", params)]
    by_type = run(con, f"""
        SELECT coalesce(call_type, '(none)') AS call_type, count(*) AS n
        FROM calls WHERE {clause} GROUP BY 1 ORDER BY n DESC, call_type LIMIT ?""",
                  [*params, top])
    types = [CallTypeCount(t, int(n)) for t, n in by_type]
    return CallsSummary(filter=where, total=total, months=fill_months(by_month),
                        call_types=types, other_call_types=total - sum(t.calls for t in types))


def fill_months(counts: list[tuple[str, int]]) -> list[MonthCount]:
    """Month counts from the first to the last month, with months without calls as 0."""
    if not counts:
        return []
    known = {month: int(n) for month, n in counts}
    year, month = map(int, counts[0][0].split("-"))
    last = counts[-1][0]
    filled: list[MonthCount] = []
    while True:
        key = f"{year:04d}-{month:02d}"
        filled.append(MonthCount(key, known.get(key, 0)))
        if key >= last:
            return filled
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


@dataclass(frozen=True)
class Overview:
    """Everything the "What was loaded" page shows."""

    sources: list[Source]
    batches: BatchPage
    summary: CallsSummary

    @property
    def empty(self) -> bool:
        """Nothing was ever loaded."""
        return self.batches.total == 0

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.sources)

    @property
    def quarantined(self) -> int:
        return sum(s.quarantined for s in self.sources)


def overview(con: Connection, source: str | None = None, batches: int = 20,
             top: int = 10) -> Overview:
    """Sources, the newest ``batches`` batches and the calls summary (of one source or all)."""
    return Overview(sources=list_sources(con), batches=list_batches(con, batches, 0),
                    summary=calls_summary(con, CallFilter(source=source), top))
