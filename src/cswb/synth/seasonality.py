"""When calls come: volume by day (trend, year, week, holidays, noise) and by hour of day.

The shapes follow what published call data shows: summer is busier than late winter, Friday
and Saturday busier than Sunday to Tuesday, a trough around 5 a.m. and a late-afternoon peak;
traffic calls peak at commuting hours, disturbances late at night (later still at weekends),
alarms when businesses open and close, officer activity follows shifts.
"""

from __future__ import annotations

import numpy as np

from cswb.synth.clock import EPOCH_DAY

WEEKDAY_FACTOR = np.array([0.97, 0.96, 0.98, 1.00, 1.08, 1.06, 0.95])
"""Relative volume Monday (0) to Sunday (6)."""

YEARLY_AMPLITUDE = 0.11
PEAK_DAY_OF_YEAR = 196
ANNUAL_TREND = 0.03
DAILY_NOISE_CV = 0.05

HOLIDAYS: dict[tuple[int, int], float] = {
    (1, 1): 1.18, (7, 4): 1.3, (10, 31): 1.12, (12, 24): 0.92, (12, 25): 0.88, (12, 31): 1.12,
}
"""(month, day) with a volume multiplier."""

HOUR_PROFILES: dict[str, np.ndarray] = {
    "general": np.array([3.4, 2.8, 2.4, 2.0, 1.7, 1.6, 2.0, 2.9, 3.8, 4.4, 4.8, 5.0,
                         5.1, 5.2, 5.3, 5.5, 5.7, 5.8, 5.6, 5.3, 5.0, 4.7, 4.3, 3.8]),
    "commute": np.array([1.4, 1.0, 0.8, 0.6, 0.6, 1.0, 2.6, 5.2, 5.6, 4.2, 4.0, 4.4,
                         4.8, 4.7, 5.0, 6.0, 6.8, 6.9, 5.6, 4.2, 3.4, 2.8, 2.3, 1.8]),
    "nightlife": np.array([6.8, 6.2, 5.2, 3.6, 2.2, 1.4, 1.2, 1.4, 1.8, 2.2, 2.6, 3.0,
                           3.3, 3.5, 3.8, 4.2, 4.6, 5.0, 5.4, 5.8, 6.2, 6.8, 7.2, 7.2]),
    "evening": np.array([4.6, 3.8, 3.0, 2.3, 1.8, 1.5, 1.7, 2.4, 3.2, 3.8, 4.2, 4.5,
                         4.7, 4.9, 5.1, 5.4, 5.8, 6.0, 6.1, 6.0, 5.8, 5.6, 5.3, 5.0]),
    "daytime": np.array([1.2, 0.9, 0.7, 0.6, 0.6, 0.8, 1.6, 3.2, 5.6, 6.8, 7.2, 7.2,
                         7.0, 7.0, 6.9, 6.6, 6.0, 5.2, 4.2, 3.4, 2.8, 2.3, 1.9, 1.5]),
    "alarm": np.array([2.6, 2.4, 2.2, 2.2, 2.6, 3.6, 5.4, 7.0, 6.4, 4.8, 4.2, 4.2,
                       4.2, 4.2, 4.3, 4.6, 5.4, 6.4, 6.6, 5.6, 4.4, 3.8, 3.3, 2.9]),
    "patrol": np.array([4.8, 4.6, 4.2, 3.8, 3.4, 2.6, 1.6, 2.8, 4.4, 4.8, 5.0, 4.8,
                        4.2, 4.6, 3.2, 3.8, 4.8, 5.0, 4.8, 4.8, 5.2, 5.4, 3.6, 4.6]),
}
"""Relative volume by local hour (0-23) for each hour profile named in families.csv."""

WEEKEND_NIGHT = np.array([1.45, 1.5, 1.45, 1.3, 1.1, 0.9, 0.7, 0.7, 0.8, 0.9, 1.0, 1.0,
                          1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.05, 1.1, 1.15])
"""Multiplier by hour on Saturdays and Sundays (late Friday and Saturday nights)."""


def weekday(days: np.ndarray) -> np.ndarray:
    """Monday 0 to Sunday 6 of days since 1970-01-01 (a Thursday)."""
    return (days + 3) % 7


def daily_expected(days: np.ndarray) -> np.ndarray:
    """Expected relative volume of each local date: trend x year x week x holidays."""
    dates = EPOCH_DAY + days.astype("timedelta64[D]")
    years = dates.astype("datetime64[Y]")
    day_of_year = (dates - years).astype(np.int64)
    elapsed_years = (days - days[0]) / 365.25
    volume = (1.0 + ANNUAL_TREND) ** elapsed_years
    volume *= 1.0 + YEARLY_AMPLITUDE * np.cos(2 * np.pi * (day_of_year - PEAK_DAY_OF_YEAR)
                                              / 365.25)
    volume *= WEEKDAY_FACTOR[weekday(days)]
    month = (dates.astype("datetime64[M]") - years).astype(np.int64) + 1
    day_of_month = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    for (m, d), factor in HOLIDAYS.items():
        volume[(month == m) & (day_of_month == d)] *= factor
    return volume


def daily_counts(total: int, days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Calls per date: ``total`` spread by the expected volume with over-dispersed noise."""
    expected = daily_expected(days) * rng.gamma(1 / DAILY_NOISE_CV**2, DAILY_NOISE_CV**2,
                                                len(days))
    return rng.multinomial(total, expected / expected.sum())


def hour_weights(profile: str, weekend: bool) -> np.ndarray:
    """Probability of each local hour for a profile, on a weekday or a weekend day."""
    weights = HOUR_PROFILES[profile] * (WEEKEND_NIGHT if weekend else 1.0)
    return weights / weights.sum()
