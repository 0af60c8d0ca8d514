"""The dashboard's pages and CSV downloads (thin: the panels do the work).

Every page takes the filter of :mod:`cswb.web.filters` from the query string and carries it in
its navigation; every panel has a table view and ``/dashboard/data/<panel>.csv``. All published
counts pass small-cell suppression (``settings.disclosure_threshold``) and each page says so.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from cswb.analytics import metrics
from cswb.analytics.populations import load_populations
from cswb.analytics.query import FLAGS, AnalyticsError, DuckDBEngine
from cswb.api.deps import MetricEngine
from cswb.api.errors import error_response
from cswb.errors import CswbError, NotFoundError
from cswb.respond.policy import load_policy
from cswb.settings import Settings
from cswb.web.cache import kept, store_key
from cswb.web.filters import CATEGORIES, TIERS, DashboardFilter, FilterError, label
from cswb.web.geo import Area, load_boundaries
from cswb.web.measures import area_names
from cswb.web.panel import Panel
from cswb.web.panels import Context
from cswb.web.registry import PANELS
from cswb.web.tiers import tier_filtered

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Page:
    """A dashboard page: where it is, its title, what it is for and its panels."""

    slug: str
    path: str
    title: str
    intro: str
    panels: tuple[str, ...]


PAGES: tuple[Page, ...] = (
    Page("overview", "/", "Overview", "How many calls, of what kind, and how demand is moving.",
         ("monthly", "top_categories", "crime_split")),
    Page("categories", "/categories", "Categories and flags",
         "Calls by the taxonomy's category, and by the flags that cut across categories.",
         ("categories", "flags")),
    Page("bh", "/behavioural-health", "Behavioural health",
         "Calls about mental health, suicide or substance use, however the call was coded.",
         ("bh_summary", "bh_monthly")),
    Page("time", "/time", "Time patterns",
         "When calls come in, week by week, and whether the latest change is more than noise.",
         ("hour_of_week", "weekly", "change")),
    Page("areas", "/areas", "Areas", "Where calls come from, and calls per 1,000 residents.",
         ("areas",)),
    Page("forecasts", "/forecasts", "Forecasts",
         "Expected calls in the coming weeks, with prediction intervals.",
         ("forecast", "backtest")),
    Page("response", "/response", "Response",
         "How long responses take, and what an alternative response would change.",
         ("scenario", "staffing", "response_times", "on_scene_times")),
)
PAGE_BY_SLUG = {p.slug: p for p in PAGES}


def dashboard_engine(engine: MetricEngine) -> Iterator[DuckDBEngine]:
    """The API's metric engine: this request's cursor and the store version's roll-ups
    (tests may supply another engine)."""
    yield engine


Engine = Annotated[DuckDBEngine, Depends(dashboard_engine)]


@functools.lru_cache(maxsize=8)
def _boundaries(path: Path) -> list[Area]:
    return load_boundaries(path)


@functools.lru_cache(maxsize=8)
def _populations(path: Path) -> dict[str, int]:
    return load_populations(path)


def context(request: Request, engine: DuckDBEngine, flt: DashboardFilter) -> Context:
    """The panels' context from the app's settings."""
    return context_for(request.app.state.settings, engine, flt)


def context_for(settings: Settings, engine: DuckDBEngine, flt: DashboardFilter) -> Context:
    """The panels' context (area files are read once per path)."""
    if flt.tier:
        engine = tier_filtered(engine, load_policy(settings.respond_policy), flt.tier)
    return Context(engine, flt, settings.disclosure_threshold,
                   _boundaries(settings.area_boundaries) if settings.area_boundaries else None,
                   _populations(settings.populations_path) if settings.populations_path
                   else None, settings.respond_policy, settings.respond_service_times)


def _render(request: Request, name: str, values: dict[str, Any], status: int = 200
            ) -> HTMLResponse:
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, name, values, status_code=status)
    return response


def _error_page(request: Request, exc: CswbError, flt: DashboardFilter | None) -> HTMLResponse:
    return _render(request, "dashboard_error.html",
                   {"message": str(exc), "flt": flt or DashboardFilter(), "pages": PAGES,
                    "page": PAGES[0], "active": "", "query": ""}, status=400)


def render_page(request: Request, engine: DuckDBEngine, page: Page) -> HTMLResponse:
    """A page: filters, headline figures (overview), panels and the suppression statement."""
    try:
        flt = DashboardFilter.from_query(dict(request.query_params))
    except CswbError as exc:
        return _error_page(request, exc, None)
    stored = store_key(engine.con)
    if not stored[0]:
        return _render(request, "empty.html", {})
    # before the context: a tier filter puts a view in front of the stored calls
    options = kept(("options", stored), lambda: _options(engine))
    ctx = context(request, engine, flt)
    try:
        panels = [PANELS[p](ctx) for p in page.panels]
        headlines = overview_headlines(ctx) if page.slug == "overview" else []
    except AnalyticsError as exc:
        return _error_page(request, exc, flt)
    return _render(request, "dashboard.html", {
        "page": page, "pages": PAGES, "panels": panels, "flt": flt, "query": flt.query(),
        "headlines": headlines, "threshold": ctx.threshold, "active": page.slug,
        "suppressed": sum(p.suppressed for p in panels),
        "options": options,
    })


def _options(engine: DuckDBEngine) -> dict[str, list[tuple[str, str]]]:
    return {"area": [(a, a) for a in area_names(engine)],
            "category": [(c, label(c)) for c in CATEGORIES],
            "flag": [(f, label(f)) for f in FLAGS],
            "tier": [(t, label(t)) for t in TIERS]}


@dataclass(frozen=True)
class Headline:
    """A headline figure of the overview."""

    label: str
    value: str
    note: str


def overview_headlines(ctx: Context) -> list[Headline]:
    """Calls, behavioural-health share and median response time, suppressed when small."""
    cf = ctx.calls
    total = metrics.total_calls(ctx.engine, cf)
    small = 0 < total < ctx.threshold
    out = [Headline("Calls", "suppressed" if small else f"{total:,}", ctx.filter.describe())]
    try:
        bh = metrics.behavioural_health(ctx.engine, cf)
        share = None if bh.bh_calls < ctx.threshold else bh.share
        out.append(Headline("Behavioural-health share",
                            "suppressed" if share is None else f"{100 * share:.1f}%",
                            f"of {bh.classified:,} classified calls"))
    except AnalyticsError:
        out.append(Headline("Behavioural-health share", "not yet",
                            "no call is classified yet"))
    times = metrics.durations(ctx.engine, cf, "response")
    usable = times.rows[0][2] if times.rows else 0
    median = times.rows[0][3] if times.rows else None
    out.append(Headline("Median response time",
                        "-" if median is None or usable < ctx.threshold else f"{median:.1f} min",
                        f"received to arrival, {usable:,} calls with usable times"))
    return out


def _page_route(page: Page) -> Any:
    def handler(request: Request, engine: Engine) -> HTMLResponse:
        return render_page(request, engine, page)

    handler.__name__ = f"dashboard_{page.slug}"
    return handler


for _page in PAGES:
    router.add_api_route(_page.path, _page_route(_page), methods=["GET"],
                         response_class=HTMLResponse)


@router.get("/dashboard/data/{panel_id}.csv")
def panel_csv(request: Request, panel_id: str, engine: Engine) -> Response:
    """One panel's published table as CSV, with the page's filter."""
    if panel_id not in PANELS:
        raise NotFoundError(f"no dashboard panel is called {panel_id!r}")
    try:
        flt = DashboardFilter.from_query(dict(request.query_params))
        panel: Panel = PANELS[panel_id](context(request, engine, flt))
    except (FilterError, AnalyticsError) as exc:
        return error_response(400, exc.code, str(exc))
    return Response(panel.csv_text(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="cswb-{panel_id}.csv"'})


@router.get("/static/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js from the installed ``plotly`` package (no copy in cswb, no CDN)."""
    try:
        path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError:
        raise NotFoundError("the plotly package is not installed, so charts are not drawn; "
                            "the tables show the same numbers") from None
    return FileResponse(path, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})
