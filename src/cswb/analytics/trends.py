"""Is a change in call volume more than noise? A quasi-Poisson rate-ratio test.

Call counts are counts, so a Poisson rate ratio is the natural comparison of two periods; but
daily calls vary more than a Poisson process would (day-of-week cycles, events, weather), and a
plain Poisson test would call that extra variation a significant change. The test here scales
the Poisson variance by a dispersion factor estimated from the daily counts of the two windows
(variance / mean, never below 1): the quasi-Poisson Wald test of the log rate ratio. It is
conservative when the excess variance is a weekly cycle, which is the honest direction for a
report. See ``docs/analytics.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist

from cswb.analytics.metrics import _latest_date
from cswb.analytics.query import AnalyticsError, CallFilter, Engine
from cswb.analytics.rollup import source_for

Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class Window:
    """An inclusive range of local dates."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass(frozen=True)
class RateComparison:
    """Calls in a recent window against a baseline window, and whether the change is real."""

    recent: Window
    baseline: Window
    recent_calls: int
    baseline_calls: int
    rate_ratio: float | None
    ci95_low: float | None
    ci95_high: float | None
    dispersion: float
    p_value: float | None
    verdict: str
    """``increase``, ``decrease``, ``no clear change`` or ``too few calls``."""


def compare_windows(engine: Engine, flt: CallFilter, recent: Window, baseline: Window,
                    alpha: float = 0.05) -> RateComparison:
    """Daily call rate in ``recent`` against ``baseline`` (the filter's period is replaced)."""
    recent_days = _daily(engine, flt, recent)
    baseline_days = _daily(engine, flt, baseline)
    n1, n2 = sum(recent_days), sum(baseline_days)
    phi = dispersion([recent_days, baseline_days])
    if n1 == 0 or n2 == 0:
        return RateComparison(recent, baseline, n1, n2, None, None, None, phi, None,
                              "too few calls")
    log_rr = math.log((n1 / recent.days) / (n2 / baseline.days))
    se = math.sqrt(phi * (1 / n1 + 1 / n2))
    p = 2 * (1 - NormalDist().cdf(abs(log_rr) / se))
    verdict = "no clear change" if p >= alpha else ("increase" if log_rr > 0 else "decrease")
    return RateComparison(recent, baseline, n1, n2, round(math.exp(log_rr), 4),
                          round(math.exp(log_rr - Z95 * se), 4),
                          round(math.exp(log_rr + Z95 * se), 4), round(phi, 3), p, verdict)


def dispersion(groups: list[list[int]]) -> float:
    """Pooled variance-to-mean ratio of daily counts within each window (at least 1)."""
    num, dof = 0.0, 0
    for counts in groups:
        if len(counts) < 2:
            continue
        mean = sum(counts) / len(counts)
        if mean <= 0:
            continue
        num += sum((c - mean) ** 2 for c in counts) / mean
        dof += len(counts) - 1
    return max(1.0, num / dof) if dof else 1.0


def _daily(engine: Engine, flt: CallFilter, window: Window) -> list[int]:
    scoped = flt.but(date_from=window.first, date_to=window.last)
    src = source_for(engine, scoped)
    found = {d: int(n) for d, n in engine.rows(
        f"SELECT local_date, {src.count()} FROM {src.relation}{scoped.where(engine.dialect)} "
        "GROUP BY 1")}
    return [found.get(window.first + timedelta(days=i), 0) for i in range(window.days)]


def recent_change(engine: Engine, flt: CallFilter, days: int = 28,
                  baseline: str = "previous") -> RateComparison:
    """The last ``days`` days (ending at the filter's last date, else the latest call) against
    the ``days`` before them (``previous``) or the same dates a year earlier (``year_before``,
    which removes the seasonal cycle from the comparison)."""
    if days < 7:
        raise AnalyticsError("compare windows of at least 7 days (a whole weekly cycle)")
    end = flt.date_to or _latest_date(engine, flt)
    if end is None:
        raise AnalyticsError("no calls match the filter, so there is no trend to test")
    recent = Window(end - timedelta(days=days - 1), end)
    if baseline == "previous":
        base = Window(recent.first - timedelta(days=days), recent.first - timedelta(days=1))
    elif baseline == "year_before":
        base = Window(recent.first - timedelta(days=364), recent.last - timedelta(days=364))
    else:
        raise AnalyticsError("baseline must be 'previous' or 'year_before'")
    return compare_windows(engine, flt.but(date_from=None, date_to=None), recent, base)
