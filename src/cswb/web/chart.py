"""Geometry of the server-drawn SVG bar chart of calls per month.

The template draws the shapes; this module only computes where they go, so the chart needs no
script, no external library and no network, and its numbers are the ones in the table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cswb.api.loaded import MonthCount

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    month: str
    label: str
    calls: int
    axis_month: str | None
    axis_year: str | None


@dataclass(frozen=True)
class Tick:
    y: float
    value: int

    @property
    def label(self) -> str:
        return compact(self.value)


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    bars: list[Bar]
    ticks: list[Tick]

    @property
    def baseline(self) -> int:
        return self.height - self.bottom


def month_label(month: str) -> str:
    """``2024-01`` as ``Jan 2024``."""
    year, number = month.split("-")
    return f"{_MONTHS[int(number) - 1]} {year}"


def compact(value: int) -> str:
    """A short axis label: 950, 2.5k, 10k, 1.2M."""
    if value < 1000:
        return str(value)
    if value < 1_000_000:
        return f"{value / 1000:g}k"
    return f"{value / 1_000_000:g}M"


def nice_step(maximum: int, ticks: int = 6) -> int:
    """A round step (1, 2 or 5 times a power of ten) giving at most ``ticks`` intervals."""
    if maximum <= 0:
        return 1
    raw = maximum / ticks
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return max(1, int(factor * power))
    return int(10 * power)  # pragma: no cover - the loop always returns


def label_every(months: int, max_labels: int) -> int:
    """Label every 1, 2, 3, 4, 6 or 12 months (or whole years), at most ``max_labels``."""
    for every in (1, 2, 3, 4, 6, 12):
        if math.ceil(months / every) <= max_labels:
            return every
    return 12 * math.ceil(months / 12 / max_labels)


def month_bar_chart(months: Sequence[MonthCount], width: int = 720, height: int = 280,
                    max_labels: int = 12) -> BarChart:
    """Bars for ``months`` (in order) in a ``width`` x ``height`` view box."""
    step = nice_step(max((m.calls for m in months), default=0))
    top_value = step * max(1, math.ceil(max((m.calls for m in months), default=0) / step))
    # Room for the longest tick label at the largest font the stylesheet uses (22 units).
    left, right, top, bottom = 20 + 14 * len(compact(top_value)), 12, 12, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(1, len(months))
    every = label_every(len(months), max_labels)
    bars, year_shown = [], False
    for i, m in enumerate(months):
        bar_h = plot_h * m.calls / top_value
        year, number = (int(p) for p in m.month.split("-"))
        labelled = (year * 12 + number - 1) % every == 0
        axis_year = str(year) if labelled and (number == 1 or not year_shown) else None
        year_shown = year_shown or axis_year is not None
        bars.append(Bar(x=round(left + i * slot + slot * 0.12, 2),
                        y=round(top + plot_h - bar_h, 2), width=round(slot * 0.76, 2),
                        height=round(bar_h, 2), month=m.month, label=month_label(m.month),
                        calls=m.calls, axis_month=_MONTHS[number - 1] if labelled else None,
                        axis_year=axis_year))
    ticks = [Tick(y=round(top + plot_h - plot_h * v / top_value, 2), value=v)
             for v in range(0, top_value + 1, step)]
    return BarChart(width, height, left, right, top, bottom, bars, ticks)
