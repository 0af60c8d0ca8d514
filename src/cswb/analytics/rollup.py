"""Roll-up tables: call counts pre-aggregated by every column the shared filter can touch.

A metric that only counts calls (volumes, shares, cross-tables, the behavioural-health share,
hour of week, rates, daily series for trends and forecasts) gives the same answer from a table
of counts by (local date, category, flag list, source, area) as from the ten million rows of
``calls``: every filter of :class:`~cswb.analytics.query.CallFilter` and every grouping of
:mod:`cswb.analytics.metrics` is a function of those columns, and ``sum(n_calls)`` over a group
equals ``count(*)`` over the calls in it. The flag list is kept as the call's array, so the
filter's "array contains" test reads the same on both. The local hour is not a key: each row
holds its calls per hour in 24 columns (``n_h00`` ... ``n_h23``) and those without an hour in
``n_no_hour``, so the hour-of-week profile reads as many rows as the daily counts do (a key
would multiply them by about eight).

Roll-ups per area level (the area filter and grouping read the column the filter's level
names), with or without the flag lists (without is about half the rows, and serves every metric
that neither filters nor groups by flag). The one with flags is counted from ``calls`` (the
one scan of the calls per store version and level); the one without is summed from it. They
are built lazily, on the first request that needs one, by :class:`Rollups` over one engine
database, and are valid for exactly the store version that database's views show: a new
manifest means a new database and new roll-ups (see
``docs/adr/0009-rollups-built-per-store-version.md``). The build SQL is portable (``CREATE
TABLE ... AS SELECT ... GROUP BY``).

What stays on the calls view: percentiles of response and on-scene time (exact, not from
bins) and repeat locations (they need the location column).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import duckdb

from cswb.analytics.query import AREA_LEVELS, AnalyticsError, CallFilter, Dialect, Engine
from cswb.logging import get_logger
from cswb.storage.sql import lit

log = get_logger("analytics.rollup")

ROLLUP_FORMAT = 1
"""Version of the roll-ups' layout; part of the key of cached copies, so a cswb whose roll-ups
differ never loads another's."""

COUNT_COLUMN = "n_calls"
"""The roll-up's count of calls per group (not a column of the call record)."""
NO_HOUR_COLUMN = "n_no_hour"
"""Calls of the group whose source gives no local hour."""

_BASE_COLUMNS: tuple[str, ...] = ("local_date", "category", "source")


def hour_column(hour: int) -> str:
    """The roll-up column counting a group's calls in one local hour (0-23)."""
    return f"n_h{hour:02d}"


@dataclass(frozen=True)
class Source:
    """Where a counting metric reads from: the calls view or a roll-up, and how to count."""

    relation: str = "calls"
    weight: str | None = None
    """The count column of a roll-up; None for the calls view (one row per call)."""
    monthly: bool = False
    """A monthly roll-up: ``local_date`` is the first day of the month, and the day of week
    is the column ``day_of_week``."""

    def count(self, condition: str | None = None) -> str:
        """Calls (meeting ``condition``) in a group: ``count`` on calls, ``sum`` on a roll-up."""
        if self.weight is None:
            return f"count(CASE WHEN {condition} THEN 1 END)" if condition else "count(*)"
        value = f"CASE WHEN {condition} THEN {self.weight} END" if condition else self.weight
        return f"coalesce(sum({value}), 0)"

    @property
    def is_rollup(self) -> bool:
        return self.weight is not None


CALLS = Source()


def rollup_name(area_level: str, flags: bool = True, monthly: bool = False) -> str:
    """The roll-up table of one area level, with or without the flag lists, by day or month."""
    if area_level not in AREA_LEVELS:
        raise AnalyticsError(f"no roll-up for area level {area_level!r}")
    return f"rollup_{area_level}" + ("_month" if monthly else "") + ("_flags" if flags else "")


def whole_months(flt: CallFilter) -> bool:
    """The filter's period starts on a first and ends on a last day of a month (or is open):
    a monthly roll-up then holds exactly its calls."""
    return ((flt.date_from is None or flt.date_from.day == 1)
            and (flt.date_to is None or (flt.date_to + timedelta(days=1)).day == 1))


def _measures() -> list[str]:
    return [COUNT_COLUMN, NO_HOUR_COLUMN, *(hour_column(h) for h in range(24))]


def monthly_select(area_level: str, flags: bool, dialect: Dialect) -> str:
    """The portable SELECT of a monthly roll-up, summed from the daily one (by month and day
    of week, so the hour-of-week profile can be read from it)."""
    keys = ", ".join(["category", "source", area_level, *(["flags"] if flags else [])])
    month = "CAST(date_trunc('month', local_date) AS DATE)"
    dow = dialect.day_of_week("local_date")
    sums = ", ".join(f"sum({m}) AS {m}" for m in _measures())
    return (f"SELECT {month} AS local_date, {dow} AS day_of_week, {keys}, {sums} "
            f"FROM {rollup_name(area_level, flags)} GROUP BY {month}, {dow}, {keys} "
            "ORDER BY 1")


def rollup_select(area_level: str, flags: bool = True) -> str:
    """The portable SELECT a daily roll-up is built from: with flags, counted from ``calls``;
    without, summed from the one with flags."""
    keys = ", ".join([*_BASE_COLUMNS, area_level, *(["flags"] if flags else [])])
    measures = _measures()
    if flags:
        counts = ", ".join([
            f"count(*) AS {COUNT_COLUMN}",
            f"count(CASE WHEN local_hour IS NULL THEN 1 END) AS {NO_HOUR_COLUMN}",
            *(f"count(CASE WHEN local_hour = {h} THEN 1 END) AS {hour_column(h)}"
              for h in range(24))])
        return f"SELECT {keys}, {counts} FROM calls GROUP BY {keys} ORDER BY local_date"
    sums = ", ".join(f"sum({m}) AS {m}" for m in measures)
    return (f"SELECT {keys}, {sums} FROM {rollup_name(area_level)} GROUP BY {keys} "
            "ORDER BY local_date")


class Rollups:
    """The roll-ups of one engine database (one store version), built on first use.

    ``execute`` runs one DDL statement on that database (it must be visible to every engine
    later given this object). Builds are serialised per table: a second request for a roll-up
    being built waits for it rather than building it again. A build that fails leaves no table
    and is retried by the next request.

    With a ``cache`` folder (one per store version: the caller keys it), each built table is
    also written there as Parquet and later loaded from there instead of being rebuilt, so a
    restarted server does not scan the calls again. A cache that cannot be written is logged
    and ignored.
    """

    def __init__(self, execute: Callable[[str], Any], version: int | None = None,
                 dialect: Dialect | None = None, cache: Path | None = None) -> None:
        self._execute = execute
        self.version = version
        self.dialect = dialect or Dialect()
        self.cache = cache
        self._built: set[str] = set()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def relation(self, area_level: str, flags: bool = True, monthly: bool = False) -> str:
        """The name of the roll-up (built now, with those it is summed from, if it is not)."""
        name = rollup_name(area_level, flags, monthly)
        if name in self._built:
            return name
        cached = self.cache / f"{name}.parquet" if self.cache else None
        if cached is not None and cached.is_file():
            select = f"SELECT * FROM read_parquet({lit(str(cached))})"
        elif monthly:
            self.relation(area_level, flags)
            select, cached = monthly_select(area_level, flags, self.dialect), None
        else:
            if not flags:
                self.relation(area_level, flags=True)
            select, cached = rollup_select(area_level, flags), None
        with self._lock_for(name):
            if name not in self._built:
                self._execute(f"CREATE OR REPLACE TABLE {name} AS {select}")
                if cached is None:
                    self._save(name)
                self._built.add(name)
                log.info("roll-up %s %s for store version %s", name,
                         "built" if cached is None else "loaded", self.version)
        return name

    def _save(self, name: str) -> None:
        if self.cache is None:
            return
        staged = self.cache / f".{name}-{uuid.uuid4().hex[:8]}.parquet"
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
            self._execute(f"COPY {name} TO {lit(str(staged))} (FORMAT parquet)")
            os.replace(staged, self.cache / f"{name}.parquet")
        except (OSError, duckdb.Error) as exc:
            staged.unlink(missing_ok=True)
            log.warning("roll-up %s not cached: %s", name, type(exc).__name__)

    def built(self) -> list[str]:
        """Roll-ups built so far."""
        return sorted(self._built)

    def _lock_for(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())


@runtime_checkable
class RollupEngine(Protocol):
    """An engine that can also answer from roll-ups (``rollups`` None: it cannot)."""

    rollups: Rollups | None


def source_for(engine: Engine, flt: CallFilter, *, flags: bool = False,
               months: bool = False) -> Source:
    """The smallest roll-up that answers a counting metric under ``flt`` if the engine has
    roll-ups, else the calls view. ``flags``: the metric reads the flag lists; ``months``: it
    reads dates only through the filter, months or the day of week, so a monthly roll-up serves
    it when the filter's period is whole months. Every filter field maps to a roll-up column
    (``tier`` is refused by the filter itself), so a roll-up of the filter's area level always
    applies."""
    if not isinstance(engine, RollupEngine) or engine.rollups is None:
        return CALLS
    monthly = months and whole_months(flt)
    relation = engine.rollups.relation(flt.area_level, flags or flt.flag is not None, monthly)
    return Source(relation, COUNT_COLUMN, monthly)
