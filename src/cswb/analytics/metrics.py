"""Call-volume metrics over the ``calls`` view, written once in portable SQL.

Every function takes an :class:`~cswb.analytics.query.Engine` and a
:class:`~cswb.analytics.query.CallFilter` and returns a :class:`MetricTable` (or a small
dataclass). Definitions are in ``docs/analytics.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from cswb.analytics.query import (
    BH_FLAGS,
    CRIME_CATEGORIES,
    FLAGS,
    AnalyticsError,
    CallFilter,
    Engine,
    values_table,
)
from cswb.analytics.rollup import NO_HOUR_COLUMN, hour_column, source_for
from cswb.analytics.tables import MetricTable
from cswb.storage.sql import lit

Dimension = Literal["category", "flag", "area", "period", "crime_group", "source"]
Grain = Literal["day", "week", "month"]
DIMENSIONS: tuple[str, ...] = ("category", "flag", "area", "period", "crime_group", "source")
GRAINS: tuple[str, ...] = ("day", "week", "month")

BH_CATEGORY = "behavioral_health"
UNCLASSIFIED = "unclassified"
"""Key of calls whose category is not filled yet (the classifier has not run on them)."""

MAX_DURATION_SECONDS = 24 * 3600
"""Response and on-scene times above a day are treated as data errors, not durations."""


def period_expr(grain: str) -> str:
    """The first local date of the day, ISO week (Monday) or month of each call."""
    if grain not in GRAINS:
        raise AnalyticsError(f"period grain {grain!r} is not one of {', '.join(GRAINS)}")
    if grain == "day":
        return "local_date"
    return f"CAST(date_trunc('{grain}', local_date) AS DATE)"


def crime_group_expr() -> str:
    """crime, non_crime, unknown or unclassified (``CALL_TAXONOMY.md``)."""
    crimes = ", ".join(lit(c) for c in CRIME_CATEGORIES)
    return (f"CASE WHEN category IS NULL THEN {lit(UNCLASSIFIED)} "
            f"WHEN category IN ({crimes}) THEN 'crime' "
            "WHEN category = 'unknown' THEN 'unknown' ELSE 'non_crime' END")


def dimension_expr(dimension: str, flt: CallFilter, grain: str = "month") -> str:
    """The SQL expression a dimension groups by (not ``flag``, which is many-valued)."""
    if dimension == "category":
        return f"coalesce(category, {lit(UNCLASSIFIED)})"
    if dimension == "area":
        return f"coalesce({flt.area_level}, '(none)')"
    if dimension == "period":
        return period_expr(grain)
    if dimension == "crime_group":
        return crime_group_expr()
    if dimension == "source":
        return "source"
    raise AnalyticsError(f"dimension {dimension!r} is not one of {', '.join(DIMENSIONS)}")


def total_calls(engine: Engine, flt: CallFilter) -> int:
    """Calls matching the filter."""
    src = source_for(engine, flt, months=True)
    return int(engine.rows(f"SELECT {src.count()} FROM {src.relation}"
                           f"{flt.where(engine.dialect)}")[0][0])


def volumes(engine: Engine, flt: CallFilter, by: str, grain: str = "month") -> MetricTable:
    """Calls and their share of all filtered calls by category, flag, area, period or group.

    For ``flag`` a call counts once under each flag it carries, so the shares do not add to 1;
    every flag is listed, with 0 when no call carries it. Periods are listed in order, the
    other dimensions by descending volume.
    """
    if by == "flag":
        total = total_calls(engine, flt)
        rows = _flag_counts(engine, flt)
    else:
        key = dimension_expr(by, flt, grain)
        order = "1" if by == "period" else "2 DESC, 1"
        src = source_for(engine, flt, months=by != "period" or grain == "month")
        rows = engine.rows(f"SELECT {key} AS k, {src.count()} AS n FROM {src.relation}"
                           f"{flt.where(engine.dialect)} GROUP BY 1 ORDER BY {order}")
        total = sum(int(n) for _, n in rows)  # every call has one key (NULL is a group too)
    table_rows = [(k, int(n), (n / total) if total else None) for k, n in rows]
    name = f"calls_by_{by}" + (f"_{grain}" if by == "period" else "")
    return MetricTable(name, (by, "calls", "share"), table_rows, public=True,
                       notes={"total_calls": total})


def _flag_counts(engine: Engine, flt: CallFilter) -> list[tuple[str, int]]:
    d = engine.dialect
    src = source_for(engine, flt, flags=True, months=True)
    hit = src.weight or "1"  # the calls a row stands for
    count = "coalesce(sum(c.flag_hit), 0)" if src.is_rollup else "count(c.flag_hit)"
    sql = (f"SELECT f.flag, {count} FROM {values_table('f', 'flag', FLAGS)} "
           f"LEFT JOIN (SELECT flags AS flag_list, {hit} AS flag_hit FROM {src.relation}"
           f"{flt.where(d, 'flags IS NOT NULL')}) AS c "
           f"ON {d.array_contains('c.flag_list', 'f.flag')} GROUP BY f.flag ORDER BY 2 DESC, 1")
    return [(k, int(n)) for k, n in engine.rows(sql)]


def crosstab(engine: Engine, flt: CallFilter, rows: str, cols: str,
             grain: str = "month") -> MetricTable:
    """Calls by two dimensions (neither ``flag``): one row per non-empty (row, col) pair."""
    if "flag" in (rows, cols):
        raise AnalyticsError("a two-way table by flag would count calls more than once; "
                             "filter by the flag instead")
    r, c = dimension_expr(rows, flt, grain), dimension_expr(cols, flt, grain)
    src = source_for(engine, flt, months="period" not in (rows, cols) or grain == "month")
    result = engine.rows(f"SELECT {r}, {c}, {src.count()} FROM {src.relation}"
                         f"{flt.where(engine.dialect)} GROUP BY 1, 2 ORDER BY 1, 2")
    return MetricTable(f"calls_by_{rows}_and_{cols}", (rows, cols, "calls"),
                       [(a, b, int(n)) for a, b, n in result], public=True)


def crime_split(engine: Engine, flt: CallFilter) -> MetricTable:
    """Calls in the crime and non-crime groups (``unknown`` and unclassified on their own)."""
    return volumes(engine, flt, "crime_group")


@dataclass(frozen=True)
class BehaviouralHealthShare:
    """Behavioural-health calls (category or one of the BH flags) among classified calls."""

    calls: int
    classified: int
    bh_calls: int
    bh_by_category: int
    bh_by_flag_only: int

    @property
    def share(self) -> float | None:
        return self.bh_calls / self.classified if self.classified else None


def behavioural_health(engine: Engine, flt: CallFilter) -> BehaviouralHealthShare:
    """The BH share of ``CALL_TAXONOMY.md``: category ``behavioral_health`` or a BH flag.

    The denominator is the classified calls (category filled); unclassified calls are counted
    but never treated as non-BH. Raises :class:`AnalyticsError` when no call is classified.
    """
    d = engine.dialect
    any_flag = " OR ".join(d.array_contains("flags", lit(f)) for f in BH_FLAGS)
    by_cat = f"category = {lit(BH_CATEGORY)}"
    flag_hit = f"coalesce(({any_flag}), false)"
    src = source_for(engine, flt, flags=True, months=True)
    sql = (f"SELECT {src.count()}, {src.count('category IS NOT NULL')}, "
           f"{src.count(f'{by_cat} OR {flag_hit}')}, {src.count(by_cat)}, "
           f"{src.count(f'category IS NOT NULL AND category <> {lit(BH_CATEGORY)} AND {flag_hit}')}"
           f" FROM {src.relation}{flt.where(d)}")
    calls, classified, bh, by_category, by_flag = engine.rows(sql)[0]
    if not classified:
        raise AnalyticsError(f"none of the {calls} calls matching the filter is classified "
                             "yet, so their behavioural-health share is unknown; classify "
                             "them first")
    return BehaviouralHealthShare(int(calls), int(classified), int(bh or 0),
                                  int(by_category or 0), int(by_flag or 0))


def hour_of_week(engine: Engine, flt: CallFilter) -> MetricTable:
    """Calls by local day of week (0 = Monday) and hour: all 168 cells, zeros included.

    Calls whose source gives only a date (no local hour) are left out and counted in the notes.
    """
    d = engine.dialect
    src = source_for(engine, flt, months=True)
    dow = "day_of_week" if src.monthly else d.day_of_week("local_date")
    if src.is_rollup:  # one row per day of week, the hours in columns
        hours = ", ".join(f"sum({hour_column(h)})" for h in range(24))
        by_day = engine.rows(f"SELECT {dow}, {hours}, sum({NO_HOUR_COLUMN}) FROM "
                             f"{src.relation}{flt.where(d)} GROUP BY 1")
        found: list[tuple[Any, ...]] = [(day, hour, by_hour[hour]) for day, *by_hour, _ in by_day
                 for hour in range(24)]
        found += [(None, None, row[-1]) for row in by_day]
    else:
        found = engine.rows(f"SELECT {dow}, local_hour, count(*) FROM calls{flt.where(d)} "
                            "GROUP BY 1, 2")
    counts = {(int(a), int(b)): int(n) for a, b, n in found if a is not None and b is not None}
    without_hour = sum(int(n) for _, hour, n in found if hour is None)
    rows = [(day, hour, counts.get((day, hour), 0)) for day in range(7) for hour in range(24)]
    return MetricTable("calls_by_hour_of_week", ("day_of_week", "hour", "calls"), rows,
                       public=True, notes={"calls_without_hour": int(without_hour)})


def repeat_locations(engine: Engine, flt: CallFilter, *, min_calls: int = 10,
                     window_days: int = 90, limit: int = 50, offset: int = 0) -> MetricTable:
    """Generalised locations (hundred block or intersection) with ``min_calls`` or more calls
    in the ``window_days`` days ending at the filter's last date (else the latest call).

    Not public: a block with many calls can point at a household.
    """
    if min_calls < 2 or window_days < 1:
        raise AnalyticsError("repeat locations need min_calls >= 2 and window_days >= 1")
    end = flt.date_to or _latest_date(engine, flt)
    if end is None:
        return MetricTable("repeat_locations", ("location", "calls", "first_date", "last_date"),
                           [], notes={"window": None})
    start = max(end - timedelta(days=window_days - 1), flt.date_from or date.min)
    window = flt.but(date_from=start, date_to=end)
    sql = (f"SELECT location, count(*), min(local_date), max(local_date) FROM calls"
           f"{window.where(engine.dialect, 'location IS NOT NULL')} GROUP BY location "
           f"HAVING count(*) >= {int(min_calls)} ORDER BY 2 DESC, 1 "
           f"LIMIT {int(limit)} OFFSET {int(offset)}")
    rows = [(loc, int(n), a, b) for loc, n, a, b in engine.rows(sql)]
    return MetricTable("repeat_locations", ("location", "calls", "first_date", "last_date"),
                       rows, notes={"window": [start.isoformat(), end.isoformat()],
                                    "min_calls": min_calls})


def _latest_date(engine: Engine, flt: CallFilter) -> date | None:
    src = source_for(engine, flt)  # a roll-up row exists only where calls do
    value = engine.rows(f"SELECT max(local_date) FROM {src.relation}"
                        f"{flt.where(engine.dialect)}")[0][0]
    return value if isinstance(value, date) else None


DURATIONS: dict[str, tuple[str, str]] = {
    "response": ("received_at", "arrived_at"),
    "on_scene": ("arrived_at", "cleared_at"),
}
"""Each duration and the two timestamps it runs between."""

PERCENTILES: tuple[float, ...] = (0.5, 0.75, 0.9)


def durations(engine: Engine, flt: CallFilter, kind: str = "response",
              by: str | None = None) -> MetricTable:
    """Percentiles (minutes) of response (received→arrived) or on-scene (arrived→cleared) time.

    A row is usable when both timestamps are present and the interval lies in [0, 24 h];
    ``calls`` and ``usable`` are counted per group so the reader sees what the figure rests on.
    """
    if kind not in DURATIONS:
        raise AnalyticsError(f"duration {kind!r} is not one of {', '.join(DURATIONS)}")
    d = engine.dialect
    start, end = DURATIONS[kind]
    secs = d.seconds_between(start, end)
    usable = (f"{start} IS NOT NULL AND {end} IS NOT NULL AND {secs} >= 0 "
              f"AND {secs} <= {MAX_DURATION_SECONDS}")
    value = f"CASE WHEN {usable} THEN {secs} / 60.0 END"
    pcts = ", ".join(f"percentile_cont({p}) WITHIN GROUP (ORDER BY {value})"
                     for p in PERCENTILES)
    key = dimension_expr(by, flt) if by else "'all'"
    sql = (f"SELECT {key}, count(*), count({value}), {pcts} FROM calls{flt.where(d)} "
           "GROUP BY 1 ORDER BY 2 DESC, 1")
    names = tuple(f"p{int(p * 100)}_minutes" for p in PERCENTILES)
    rows = [(k, int(n), int(u), *(None if v is None else round(float(v), 2) for v in vals))
            for k, n, u, *vals in engine.rows(sql)]
    return MetricTable(f"{kind}_time", (by or "group", "calls", "usable", *names), rows,
                       notes={"usable": f"both times present, 0 to {MAX_DURATION_SECONDS // 3600}"
                                        " hours apart"})


def rates_per_1000(engine: Engine, flt: CallFilter,
                   populations: dict[str, int]) -> MetricTable:
    """Calls per 1,000 residents by area (areas of ``flt.area_level`` with a population).

    Areas with calls but no population, and populations with no calls, are both listed (rate
    None, and 0 calls), so a mismatch of names is visible rather than hidden.
    """
    if not populations:
        raise AnalyticsError("no area populations were given")
    bad = [a for a, p in populations.items() if p <= 0]
    if bad:
        raise AnalyticsError(f"{len(bad)} area(s) have a population of zero or less")
    src = source_for(engine, flt, months=True)
    counts = dict(engine.rows(f"SELECT {flt.area_level}, {src.count()} FROM {src.relation}"
                              f"{flt.where(engine.dialect, f'{flt.area_level} IS NOT NULL')}"
                              " GROUP BY 1"))
    rows = []
    for area in sorted(set(counts) | set(populations)):
        n, pop = int(counts.get(area, 0)), populations.get(area)
        rows.append((area, n, pop, round(1000 * n / pop, 3) if pop else None))
    rows.sort(key=lambda r: (r[3] is None, -(r[3] or 0), r[0]))
    return MetricTable("rates_per_1000", ("area", "calls", "population", "per_1000"), rows,
                       public=True)
