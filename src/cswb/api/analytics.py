"""``/api/v1/metrics`` and ``/api/v1/forecast``: thin handlers over :mod:`cswb.analytics`.

Every metric takes the shared filter as query parameters. Tables meant for publication are
always suppressed here (threshold from settings) before they leave the server. Response and
on-scene times are published suppressed too, and given whole to a signed-in analyst. Repeat
locations are for analysts only (a signed-in analyst of a member agency,
``cswb.security.policy``): 401 without sign-in, 403 for other roles.
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from cswb.analytics import disclosure, metrics
from cswb.analytics.forecast import ForecastSpec, forecast, parse_horizon
from cswb.analytics.populations import load_populations
from cswb.analytics.query import AREA_LEVELS, FLAGS, AnalyticsError, CallFilter
from cswb.analytics.tables import MetricTable
from cswb.analytics.trends import recent_change
from cswb.api.deps import MetricEngine, Reader
from cswb.api.models import ErrorResponse, PublicModel
from cswb.api.security import CurrentActor, OptionalActor
from cswb.respond.policy import load_policy
from cswb.respond.scenario import run_scenario
from cswb.respond.tiers import DIVERTED_TIERS
from cswb.security.policy import Action, authorize, is_allowed
from cswb.security.principal import Actor
from cswb.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["metrics"], responses={
    400: {"model": ErrorResponse, "description": "The filter or options cannot be applied."},
    401: {"model": ErrorResponse, "description": "An analyst-only metric: sign in."},
    403: {"model": ErrorResponse, "description": "An analyst-only metric: not your role."},
    422: {"model": ErrorResponse, "description": "Invalid parameters."},
})


class MetricTableOut(PublicModel):
    """One metric table: columns, a page of rows, and how to read them."""

    name: str
    columns: list[str]
    rows: list[list[Any]] = Field(description="A page of rows; null where suppressed.")
    public: bool = Field(description="Suppressed for publication (small cells hidden).")
    notes: dict[str, Any] = Field(description="Totals, thresholds, usable rows, windows.")
    total_rows: int
    limit: int
    offset: int


def call_filter(
    *,
    date_from: Annotated[date | None, Query(alias="from", description="First local date.")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Last local date.")] = None,
    area: Annotated[str | None, Query(max_length=200, description="One area.")] = None,
    area_level: Annotated[str, Query(description="Area column: " + ", ".join(AREA_LEVELS))
                          ] = "neighbourhood",
    category: Annotated[str | None, Query(max_length=100, description="One category.")] = None,
    flag: Annotated[str | None, Query(description="One flag: " + ", ".join(FLAGS))] = None,
    tier: Annotated[str | None, Query(max_length=100, description="Response tier (once the "
                                      "response policy fills it).")] = None,
    source: Annotated[str | None, Query(max_length=200, description="One source.")] = None,
) -> CallFilter:
    """The shared filter from the query string."""
    return CallFilter(date_from, date_to, area, area_level, category, flag, tier, source)


Filter = Annotated[CallFilter, Depends(call_filter)]
Limit = Annotated[int, Query(ge=1, le=5000, description="Rows per page.")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip.")]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _page(table: MetricTable, limit: int, offset: int) -> MetricTableOut:
    rows = [list(r) for r in table.rows[offset:offset + limit]]
    return MetricTableOut(name=table.name, columns=list(table.columns), rows=rows,
                          public=table.public, notes=table.notes, total_rows=len(table.rows),
                          limit=limit, offset=offset)


def _public(request: Request, table: MetricTable, limit: int, offset: int) -> MetricTableOut:
    threshold = _settings(request).disclosure_threshold
    return _page(disclosure.publish(table, threshold), limit, offset)


def _analyst_only(actor: Actor) -> None:
    """Detailed metrics are for analysts of member agencies, signed in (one policy decides)."""
    authorize(actor.principal, Action.ANALYTICS_DETAIL)


@router.get("/metrics/volumes")
def volumes(*, request: Request, engine: MetricEngine, flt: Filter,
            by: Annotated[str, Query(description="category, flag, area, period, crime_group or "
                                                 "source.")] = "category",
            grain: Annotated[str, Query(description="day, week or month (by=period).")] = "month",
            limit: Limit = 500, offset: Offset = 0) -> MetricTableOut:
    """Calls and shares by one dimension, suppressed (a ``total`` row closes the table)."""
    return _public(request, metrics.volumes(engine, flt, by, grain), limit, offset)


@router.get("/metrics/crosstab")
def crosstab(*, request: Request, engine: MetricEngine, flt: Filter,
             rows: Annotated[str, Query(description="Row dimension.")] = "category",
             cols: Annotated[str, Query(description="Column dimension.")] = "area",
             grain: Annotated[str, Query(description="Period grain.")] = "month",
             limit: Limit = 5000, offset: Offset = 0) -> MetricTableOut:
    """Calls by two dimensions with row, column and grand totals (``total``), suppressed."""
    table = metrics.crosstab(engine, flt, rows, cols, grain)
    return _public(request, table, limit, offset)


@router.get("/metrics/crime-split")
def crime_split(*, request: Request, engine: MetricEngine, flt: Filter) -> MetricTableOut:
    """Crime, non-crime, unknown and unclassified calls (``CALL_TAXONOMY.md``), suppressed."""
    return _public(request, metrics.crime_split(engine, flt), 100, 0)


@router.get("/metrics/behavioural-health")
def behavioural_health(*, request: Request, engine: MetricEngine, flt: Filter
                       ) -> MetricTableOut:
    """Classified calls that are behavioural health by category, by flag only, or not, with
    the BH share (suppressed with its counts)."""
    bh = metrics.behavioural_health(engine, flt)
    table = MetricTable("behavioural_health", ("part", "calls"), [
        ("bh_by_category", bh.bh_by_category), ("bh_by_flag_only", bh.bh_by_flag_only),
        ("not_bh", bh.classified - bh.bh_calls)], public=True,
        notes={"unclassified_calls": bh.calls - bh.classified})
    out = _public(request, table, 100, 0)
    if 0 < bh.calls - bh.classified < _settings(request).disclosure_threshold:
        out.notes.pop("unclassified_calls")
    parts = {r[0]: r[1] for r in out.rows}
    shown = None not in (parts["bh_by_category"], parts["bh_by_flag_only"])
    notes = {**out.notes, "bh_share": bh.share if shown and bh.classified else None}
    return out.model_copy(update={"notes": notes})


@router.get("/metrics/hour-of-week")
def hour_of_week(*, request: Request, engine: MetricEngine, flt: Filter) -> MetricTableOut:
    """Calls by local day of week (0 = Monday) and hour, with margins, suppressed."""
    return _public(request, metrics.hour_of_week(engine, flt), 5000, 0)


@router.get("/metrics/rates")
def rates(*, request: Request, engine: MetricEngine, flt: Filter) -> MetricTableOut:
    """Calls per 1,000 residents by area (populations from the setting populations_path)."""
    path = _settings(request).populations_path
    if path is None:
        raise AnalyticsError("no area populations are configured (setting populations_path)")
    table = metrics.rates_per_1000(engine, flt, load_populations(Path(path)))
    return _public(request, table, 5000, 0)


class ChangeOut(PublicModel):
    """The recent window's daily call rate against a baseline window (quasi-Poisson test)."""

    recent: list[date]
    baseline: list[date]
    recent_calls: int | None
    baseline_calls: int | None
    rate_ratio: float | None
    ci95: list[float | None]
    p_value: float | None
    verdict: str


@router.get("/metrics/change")
def change(*, request: Request, engine: MetricEngine, flt: Filter,
           days: Annotated[int, Query(ge=7, le=366, description="Window length.")] = 28,
           baseline: Annotated[str, Query(description="previous or year_before.")] = "previous",
           ) -> ChangeOut:
    """Is the last window's volume different from the baseline's, beyond noise? Counts under
    the disclosure threshold are not published, nor their ratio."""
    c = recent_change(engine, flt, days, baseline)
    small = min(c.recent_calls, c.baseline_calls) < _settings(request).disclosure_threshold
    return ChangeOut(recent=[c.recent.first, c.recent.last],
                     baseline=[c.baseline.first, c.baseline.last],
                     recent_calls=None if small else c.recent_calls,
                     baseline_calls=None if small else c.baseline_calls,
                     rate_ratio=None if small else c.rate_ratio,
                     ci95=[None, None] if small else [c.ci95_low, c.ci95_high],
                     p_value=None if small else c.p_value,
                     verdict="too few calls to publish" if small else c.verdict)


@router.get("/metrics/response-times")
def response_times(*, request: Request, actor: OptionalActor, engine: MetricEngine,
                   flt: Filter,
                   kind: Annotated[str, Query(description="response or on_scene.")] = "response",
                   by: Annotated[str | None, Query(description="Optional dimension.")] = None,
                   limit: Limit = 500, offset: Offset = 0) -> MetricTableOut:
    """Percentiles (minutes) with counts of calls and usable rows.

    Aggregates, so public after suppression (the dashboard's rule): calls protected like any
    count table, percentiles hidden where they rest on fewer calls than the threshold. A
    signed-in analyst of a member agency gets the table unsuppressed.
    """
    table = metrics.durations(engine, flt, kind, by)
    if actor is not None and is_allowed(actor.principal, Action.ANALYTICS_DETAIL):
        return _page(table, limit, offset)
    threshold = _settings(request).disclosure_threshold
    return _page(disclosure.publish_durations(table, threshold), limit, offset)


@router.get("/metrics/repeat-locations")
def repeat_locations(*, actor: CurrentActor, engine: MetricEngine, flt: Filter,
                     min_calls: Annotated[int, Query(ge=2, le=100000)] = 10,
                     window_days: Annotated[int, Query(ge=1, le=3660)] = 90,
                     limit: Limit = 50, offset: Offset = 0) -> MetricTableOut:
    """Blocks with ``min_calls`` or more calls in the window (analysts only)."""
    _analyst_only(actor)
    table = metrics.repeat_locations(engine, flt, min_calls=min_calls,
                                     window_days=window_days, limit=limit, offset=offset)
    return MetricTableOut(name=table.name, columns=list(table.columns),
                          rows=[list(r) for r in table.rows], public=False, notes=table.notes,
                          total_rows=len(table.rows), limit=limit, offset=offset)


class SeriesReportOut(PublicModel):
    series: str
    observations: int
    model: str
    mase: dict[str, float]
    coverage_80: float | None
    coverage_95: float | None
    note: str


class ForecastOut(PublicModel):
    by: str
    freq: str
    horizon: int
    train_until: date | None
    reports: list[SeriesReportOut]
    columns: list[str]
    rows: list[list[Any]] = Field(description="A page of series,ds,mean,lo_80,hi_80,lo_95,hi_95.")
    total_rows: int
    limit: int
    offset: int


_forecasts: dict[tuple[Any, ...], Any] = {}
_forecast_lock = threading.Lock()


@router.get("/forecast", tags=["forecast"])
def forecast_endpoint(*, reader: Reader, engine: MetricEngine, flt: Filter,
                      by: Annotated[str, Query(description="category, area or none.")] = "none",
                      freq: Annotated[str, Query(description="day or week.")] = "day",
                      horizon: Annotated[str, Query(max_length=10)] = "84d",
                      train_until: Annotated[date | None, Query()] = None,
                      limit: Limit = 1000, offset: Offset = 0) -> ForecastOut:
    """Forecasts with 80/95 intervals and the backtest report (computed once per store
    version and parameters: the first call takes seconds to minutes)."""
    spec = ForecastSpec(by=by, freq=freq, horizon=parse_horizon(horizon, freq),
                        train_until=train_until, area_level=flt.area_level)
    key = (reader.manifest().version, spec, flt)
    with _forecast_lock:
        result = _forecasts.get(key)
        if result is None:
            result = forecast(engine, spec, flt)
            _forecasts.clear()  # one result kept: forecasts are big and rarely re-asked
            _forecasts[key] = result
    frame = result.forecasts
    page = frame.iloc[offset:offset + limit]
    rows = [[r.series, r.ds, r.mean, r.lo_80, r.hi_80, r.lo_95, r.hi_95]
            for r in page.itertuples(index=False)]
    return ForecastOut(by=spec.by, freq=spec.freq, horizon=spec.horizon,
                       train_until=spec.train_until,
                       reports=[SeriesReportOut.model_validate(r) for r in result.reports],
                       columns=list(frame.columns), rows=rows, total_rows=len(frame),
                       limit=limit, offset=offset)


@router.get("/scenario")
def scenario(*, request: Request, engine: MetricEngine, flt: Filter) -> MetricTableOut:
    """Calls, shares and unit hours the local response policy gives each responder tier.

    Public: tier counts pass small-cell and complementary suppression (a hidden tier's share
    and unit hours are hidden with it); the share diverted from police is given only when both
    the diverted and the other calls reach the threshold. 409 when no call is classified.
    """
    if flt.tier:
        raise AnalyticsError("the scenario is given by tier already: drop the tier filter")
    settings = _settings(request)
    policy = load_policy(settings.respond_policy)
    relation = f"(SELECT * FROM calls{flt.where(engine.dialect)})"
    result = run_scenario(engine.con, policy, relation)
    table = MetricTable("scenario", ("tier", "calls", "share", "unit_hours"), [
        (t.tier, t.calls, round(t.share, 4), round(t.unit_hours_estimated, 1))
        for t in result.tiers], public=True)
    published = disclosure.publish(table, settings.disclosure_threshold)
    rows = [row if row[1] is not None else (row[0], None, None, None)
            for row in published.rows]
    threshold = settings.disclosure_threshold
    kept_back = result.classified_calls - result.diverted_calls
    diverted = (round(result.diverted_share, 4)
                if min(result.diverted_calls, kept_back) >= threshold else None)
    notes = {**published.notes, "policy": result.policy,
             "policy_version": result.policy_version, "diverted_share": diverted,
             "diverted_tiers": [t.value for t in DIVERTED_TIERS],
             "unit_hours": "estimated on-scene hours of the first unit (docs/respond.md)"}
    return MetricTableOut(name="scenario", columns=list(table.columns),
                          rows=[list(r) for r in rows], public=True, notes=notes,
                          total_rows=len(rows), limit=len(rows), offset=0)
