"""Plotly figures as plain dictionaries (``{"data": [...], "layout": {...}}``).

The page hands each one to ``Plotly.newPlot`` (``static/dashboard.js``, with the ``plotly.js``
that the ``plotly`` Python package ships, served by cswb itself). Colours are the stylesheet's,
chosen for contrast; the heat map's scale is sequential and colour-blind safe (cividis).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

BAR = "#2a6bb5"
INK = "#1b1f24"
MUTED = "#4a5360"
GRID = "#dde2e8"


def _layout(height: int, **more: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "height": height, "margin": {"l": 10, "r": 10, "t": 10, "b": 40},
        "font": {"family": "system-ui, sans-serif", "size": 13, "color": INK},
        "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff", "showlegend": False,
        "xaxis": {"automargin": True, "gridcolor": GRID, "linecolor": MUTED},
        "yaxis": {"automargin": True, "gridcolor": GRID, "linecolor": MUTED, "rangemode": "tozero"},
    }
    layout.update(more)
    return layout


def bars(labels: Sequence[str], values: Sequence[Any], *, unit: str = "calls",
         horizontal: bool = True) -> dict[str, Any]:
    """Bars, largest first from the top when horizontal; a suppressed value (None) has no bar
    and says so in its label."""
    labels = [f"{name} (suppressed)" if v is None else name
              for name, v in zip(labels, values, strict=True)]
    trace: dict[str, Any] = {"type": "bar", "marker": {"color": BAR},
                             "hovertemplate": f"%{{{'y' if horizontal else 'x'}}}: "
                                              f"%{{{'x' if horizontal else 'y'}:,}} {unit}"
                                              "<extra></extra>"}
    if horizontal:
        trace.update(orientation="h", x=list(values)[::-1], y=list(labels)[::-1])
        height = max(180, 28 * len(labels) + 60)
        return {"data": [trace], "layout": _layout(height, yaxis={"automargin": True})}
    trace.update(x=list(labels), y=list(values))
    return {"data": [trace], "layout": _layout(300)}


def line(x: Sequence[Any], y: Sequence[Any], *, unit: str = "calls") -> dict[str, Any]:
    """A line with markers over periods (gaps where values are suppressed)."""
    trace = {"type": "scatter", "mode": "lines+markers", "x": list(x), "y": list(y),
             "line": {"color": BAR, "width": 2}, "marker": {"size": 5, "color": BAR},
             "connectgaps": False, "hovertemplate": f"%{{x}}: %{{y:,}} {unit}<extra></extra>"}
    return {"data": [trace], "layout": _layout(300)}


def heatmap(z: Sequence[Sequence[Any]], x: Sequence[Any], y: Sequence[str], *,
            unit: str = "calls") -> dict[str, Any]:
    """Hour-of-week heat map: days as rows (Monday on top), hours as columns."""
    trace = {"type": "heatmap", "z": [list(r) for r in z], "x": list(x), "y": list(y),
             "colorscale": "Cividis", "reversescale": False, "hoverongaps": False,
             "colorbar": {"title": {"text": unit}, "thickness": 12},
             "hovertemplate": f"%{{y}} %{{x}}:00: %{{z:,}} {unit}<extra></extra>"}
    return {"data": [trace], "layout": _layout(
        300, yaxis={"automargin": True, "autorange": "reversed"},
        xaxis={"automargin": True, "title": {"text": "hour of the day"}, "dtick": 3})}


def forecast_band(history: tuple[Sequence[Any], Sequence[Any]],
                  forecast: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """Recent history, the forecast mean and its 80% and 95% prediction intervals.

    ``forecast`` holds the columns ``ds``, ``mean``, ``lo_80``, ``hi_80``, ``lo_95``, ``hi_95``.
    """
    ds = list(forecast["ds"])

    def band(level: int, colour: str) -> dict[str, Any]:
        lo, hi = list(forecast[f"lo_{level}"]), list(forecast[f"hi_{level}"])
        return {"type": "scatter", "x": [*ds, *reversed(ds)], "y": [*hi, *reversed(lo)],
                "fill": "toself", "fillcolor": colour, "line": {"width": 0},
                "name": f"{level}% interval", "hoverinfo": "skip"}

    traces = [band(95, "rgba(42, 107, 181, 0.15)"), band(80, "rgba(42, 107, 181, 0.32)"),
              {"type": "scatter", "mode": "lines", "x": list(history[0]),
               "y": list(history[1]), "line": {"color": INK, "width": 1.2}, "name": "calls",
               "connectgaps": False},
              {"type": "scatter", "mode": "lines", "x": ds, "y": list(forecast["mean"]),
               "line": {"color": BAR, "width": 2, "dash": "dash"}, "name": "forecast"}]
    return {"data": traces, "layout": _layout(340, showlegend=True,
                                              legend={"orientation": "h", "y": -0.25})}
