"""Measures the dashboard needs that the analytics package does not offer (yet).

Written with the analytics package's filter, dialect and constants, so the definitions are the
same: behavioural health as ``CALL_TAXONOMY.md`` defines it (category ``behavioral_health`` or
one of the flags ``mental_health``, ``suicide``, ``substance_use``).
"""

from __future__ import annotations

from datetime import date

from cswb.analytics.metrics import period_expr
from cswb.analytics.query import BH_FLAGS, CallFilter, Engine
from cswb.storage.sql import lit


def bh_condition(engine: Engine) -> str:
    """SQL true for a behavioural-health call."""
    flags = " OR ".join(engine.dialect.array_contains("flags", lit(f)) for f in BH_FLAGS)
    return f"(category = 'behavioral_health' OR coalesce(({flags}), false))"


def bh_by_period(engine: Engine, flt: CallFilter, grain: str = "month"
                 ) -> list[tuple[str, int, int]]:
    """(period start, behavioural-health calls, classified calls) per period, in order."""
    period = period_expr(grain)
    rows = engine.rows(
        f"SELECT {period} AS p, sum(CASE WHEN {bh_condition(engine)} THEN 1 ELSE 0 END), "
        f"count(*) FROM calls{flt.where(engine.dialect, 'category IS NOT NULL')} "
        "GROUP BY 1 ORDER BY 1")
    return [(str(p), int(bh or 0), int(n)) for p, bh, n in rows]


def area_names(engine: Engine, level: str = "neighbourhood") -> list[str]:
    """Distinct non-empty area names of the stored calls, sorted (for the filter's list)."""
    rows = engine.rows(f"SELECT DISTINCT {level} FROM calls WHERE {level} IS NOT NULL "
                       "ORDER BY 1")
    return [str(r[0]) for r in rows]


def first_date(engine: Engine, flt: CallFilter) -> date | None:
    """The earliest local date of the calls matching the filter's area, category and flag."""
    scoped = flt.but(date_from=None, date_to=None)
    value = engine.rows(f"SELECT min(local_date) FROM calls{scoped.where(engine.dialect)}")[0][0]
    return value if isinstance(value, date) else None
