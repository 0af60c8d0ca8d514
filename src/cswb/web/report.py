"""The CSWB report: one self-contained HTML file of the indicators a CSWB plan needs.

It is made of the dashboard's panels (so every table has passed the same small-cell
suppression) with inline CSS and inline SVG charts: no script, no stylesheet link, no image or
font fetched from anywhere, so it opens offline and can be mailed or printed as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from cswb import __version__
from cswb.analytics import metrics
from cswb.analytics.query import CallFilter
from cswb.errors import CswbError
from cswb.files import atomic_write
from cswb.web.filters import DashboardFilter
from cswb.web.panel import SUPPRESSED, Panel
from cswb.web.panels import Context
from cswb.web.registry import PANELS

REPORT_PANELS: tuple[str, ...] = (
    "monthly", "crime_split", "top_categories", "bh_summary", "flags", "change",
    "response_times", "scenario", "areas", "forecast", "backtest",
)
"""The report's sections, in order (ids of :data:`cswb.web.panels.PANELS`)."""


class ReportError(CswbError):
    """The report cannot be written (empty store, unwritable file)."""

    code = "report_error"
    exit_code = 8


@dataclass(frozen=True)
class Report:
    """The report's sections and what it was made from."""

    title: str
    flt: DashboardFilter
    threshold: int
    panels: list[Panel]
    created: datetime

    @property
    def suppressed(self) -> int:
        return sum(p.suppressed for p in self.panels)


def build_report(ctx: Context, title: str = "Community safety and well-being indicators"
                 ) -> Report:
    """Compute every section; raises :class:`ReportError` when no call matches."""
    if not metrics.total_calls(ctx.engine, CallFilter()):
        raise ReportError("the store holds no calls: ingest some first (cswb ingest, cswb demo)")
    return Report(title, ctx.filter, ctx.threshold, [PANELS[p](ctx) for p in REPORT_PANELS],
                  datetime.now(UTC))


def bar_svg(panel: Panel, limit: int = 24) -> str:
    """Horizontal bars of a panel's first numeric column (suppressed rows say so)."""
    rows = panel.rows[:limit]
    values = [r[1] if isinstance(r[1], int | float) else None for r in rows]
    top = max((v for v in values if v is not None), default=0) or 1
    width, label_w, row_h = 640, 190, 22
    height = row_h * len(rows) + 8
    parts = []
    for i, (row, value) in enumerate(zip(rows, values, strict=True)):
        y = 4 + i * row_h
        name = escape(str(row[0]))[:32]
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{name}</text>')
        if value is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + 15}" class="muted">suppressed</text>')
            continue
        bar = (width - label_w - 70) * value / top
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar:.1f}" height="{row_h - 6}"/>'
                     f'<text x="{label_w + bar + 4:.1f}" y="{y + 15}">{value:,}</text>')
    return (f'<svg class="bars" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(panel.title)}: {escape(panel.summary)}">{"".join(parts)}</svg>')


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("cswb.web", "templates"),
                      autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["version"] = __version__
    env.globals["SUPPRESSED"] = SUPPRESSED
    env.filters["bars"] = bar_svg
    return env


def render_report(report: Report) -> str:
    """The report as one HTML document."""
    css = (Path(__file__).parent / "static" / "report.css").read_text(encoding="utf-8")
    return _environment().get_template("report.html").render(report=report, css=css)


def write_report(report: Report, out: Path) -> Path:
    """Write the report atomically to ``out``."""
    try:
        atomic_write(out, render_report(report))
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out}: {exc.strerror}") from None
    return out


def numeric_cells(panels: Sequence[Panel]) -> list[Any]:
    """Every published count cell of the report's tables (for checks and tests)."""
    return [v for p in panels for row in p.rows
            for c, v in zip(p.columns, row, strict=True) if c.kind == "count"]
