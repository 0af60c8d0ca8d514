"""A small portable-SQL layer over the ``calls`` view: the filter, the engine, the dialect.

Every metric is written as one SELECT over ``calls`` in the ANSI subset that DuckDB and Spark SQL
both accept. The few spellings that differ between engines (day of week, seconds between two
timestamps, "array contains") sit in :class:`Dialect`, one place, as Splink does. An engine is
anything with a ``dialect`` and a ``rows(sql)`` method; :class:`DuckDBEngine` is the embedded one.
Values are written into the SQL as escaped literals (both engines accept them; neither needs
driver-specific parameter markers). See ``docs/adr/0005-portable-sql-metrics.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

import duckdb

from cswb.errors import CswbError
from cswb.storage.sql import lit, run

if TYPE_CHECKING:
    from cswb.analytics.rollup import Rollups

AREA_LEVELS: tuple[str, ...] = ("neighbourhood", "district", "sector", "beat")
"""Columns of the call record an area may be taken from (finest last is not implied)."""

FLAGS: tuple[str, ...] = (
    "mental_health", "suicide", "substance_use", "welfare", "homelessness", "domestic",
    "youth", "weapon", "violence", "in_progress", "officer_initiated",
)
"""The taxonomy's flags (``CALL_TAXONOMY.md``)."""

BH_FLAGS: tuple[str, ...] = ("mental_health", "suicide", "substance_use")
"""Flags that make a call behavioural health (with the category ``behavioral_health``)."""

CRIME_CATEGORIES: tuple[str, ...] = (
    "violent_crime", "other_crime", "property_crime", "sex_offense", "domestic_violence",
    "drugs", "liquor", "warrant", "status_offense",
)
"""The crime group of ``CALL_TAXONOMY.md``; every other category but ``unknown`` is non-crime."""


class AnalyticsError(CswbError):
    """A metric or forecast cannot be computed as asked (bad filter, no classification...)."""

    code = "analytics_error"
    exit_code = 11


class Dialect:
    """Spellings of the few expressions DuckDB and Spark SQL write differently (DuckDB's here)."""

    name = "duckdb"

    def day_of_week(self, column: str) -> str:
        """0 = Monday ... 6 = Sunday (ISO order)."""
        return f"(isodow({column}) - 1)"

    def seconds_between(self, start: str, end: str) -> str:
        return f"(epoch({end}) - epoch({start}))"

    def array_contains(self, array: str, value: str) -> str:
        return f"array_contains({array}, {value})"


class SparkDialect(Dialect):
    """Spark SQL spellings (used when the Spark backend arrives; kept here so they are reviewed)."""

    name = "spark"

    def day_of_week(self, column: str) -> str:
        return f"((dayofweek({column}) + 5) % 7)"

    def seconds_between(self, start: str, end: str) -> str:
        return f"(unix_timestamp({end}) - unix_timestamp({start}))"


class Engine(Protocol):
    """What a metric needs from an engine: its dialect and the rows of one SELECT."""

    dialect: Dialect

    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...


class DuckDBEngine:
    """The embedded engine: a DuckDB connection (or cursor) with the store's views.

    With ``rollups`` (built in the same database), counting metrics answer from them
    (:mod:`cswb.analytics.rollup`); without, everything reads the calls view. Roll-ups count
    the whole ``calls`` view: an engine whose ``calls`` is narrowed (a temporary view of one
    tier, say) must set ``rollups`` to None.
    """

    dialect: Dialect = Dialect()

    def __init__(self, con: duckdb.DuckDBPyConnection, rollups: Rollups | None = None) -> None:
        self.con = con
        self.rollups = rollups

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return run(self.con, sql)


@dataclass(frozen=True)
class CallFilter:
    """The one filter every metric applies: period, area, category, flag, tier, source.

    ``date_from``/``date_to`` are inclusive local dates. ``area`` is matched against the column
    named by ``area_level``. ``tier`` needs a ``tier`` column in the calls view (filled by the
    response policy); asking for it before then is an error, not a silent no-op.
    """

    date_from: date | None = None
    date_to: date | None = None
    area: str | None = None
    area_level: str = "neighbourhood"
    category: str | None = None
    flag: str | None = None
    tier: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.area_level not in AREA_LEVELS:
            raise AnalyticsError(f"area level {self.area_level!r} is not one of "
                                 f"{', '.join(AREA_LEVELS)}")
        if self.flag is not None and self.flag not in FLAGS:
            raise AnalyticsError(f"flag {self.flag!r} is not a taxonomy flag "
                                 f"({', '.join(FLAGS)})")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise AnalyticsError("the period's first date is after its last date")
        if self.tier is not None:
            raise AnalyticsError("calls have no response tier yet (the response policy fills "
                                 "it); remove the tier filter")

    def where(self, dialect: Dialect, *more: str) -> str:
        """The WHERE clause (with a leading space) of this filter and further conditions."""
        parts = [*self._conditions(dialect), *more]
        return (" WHERE " + " AND ".join(f"({p})" for p in parts)) if parts else ""

    def _conditions(self, dialect: Dialect) -> list[str]:
        conds: list[str] = []
        if self.date_from:
            conds.append(f"local_date >= DATE {lit(self.date_from.isoformat())}")
        if self.date_to:
            conds.append(f"local_date <= DATE {lit(self.date_to.isoformat())}")
        if self.area is not None:
            conds.append(f"{self.area_level} = {lit(self.area)}")
        if self.category is not None:
            conds.append(f"category = {lit(self.category)}")
        if self.flag is not None:
            conds.append(dialect.array_contains("flags", lit(self.flag)))
        if self.source is not None:
            conds.append(f"source = {lit(self.source)}")
        return conds

    def but(self, **changes: Any) -> CallFilter:
        """A copy with some fields changed."""
        return replace(self, **changes)


def values_table(alias: str, column: str, values: tuple[str, ...]) -> str:
    """An inline table ``(VALUES ('a'), ('b')) AS alias(column)``."""
    rows = ", ".join(f"({lit(v)})" for v in values)
    return f"(VALUES {rows}) AS {alias}({column})"
