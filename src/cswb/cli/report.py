"""``cswb report``: the self-contained HTML report of the CSWB indicators."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cswb.analytics.populations import load_populations
from cswb.analytics.query import DuckDBEngine
from cswb.cli.common import console, settings_of, store_of
from cswb.cli.serve import with_demo_areas
from cswb.web.filters import DashboardFilter
from cswb.web.geo import load_boundaries
from cswb.web.panels import Context
from cswb.web.report import build_report, write_report


def report(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", dir_okay=False,
                                      help="HTML file to write (replaced if it exists).")],
    period: Annotated[str | None, typer.Option(
        help="Local dates FROM:TO (YYYY-MM-DD, either side may be empty), e.g. "
             "2024-01-01:2024-12-31.")] = None,
    area: Annotated[str | None, typer.Option(help="Only calls of this neighbourhood.")] = None,
) -> None:
    """Write a self-contained HTML report of the indicators a CSWB plan needs (public-safe)."""
    settings = with_demo_areas(settings_of(ctx))
    first, _, last = (period or "").partition(":")
    flt = DashboardFilter.from_query({"from": first, "to": last, "area": area or ""})
    con = store_of(ctx).connect()
    try:
        context = Context(
            DuckDBEngine(con), flt, settings.disclosure_threshold,
            load_boundaries(settings.area_boundaries) if settings.area_boundaries else None,
            load_populations(settings.populations_path) if settings.populations_path else None,
            settings.respond_policy, settings.respond_service_times)
        result = build_report(context)
    finally:
        con.close()
    write_report(result, out)
    console.print(f"Wrote {out} ({flt.describe()}; {len(result.panels)} sections, "
                  f"{result.suppressed} cells suppressed at threshold {result.threshold}).")


def register(app: typer.Typer) -> None:
    """Add ``report`` to the ``cswb`` app."""
    app.command("report")(report)
