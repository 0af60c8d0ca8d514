"""The forecast panels: daily calls for the next 12 weeks with 80% and 95% intervals.

The forecast is the analytics package's (:func:`cswb.analytics.forecast.forecast`: the model
chosen by rolling-origin backtest among seasonal naive, AutoETS, AutoTheta and MSTL). It takes
seconds, so one result per filter and store content is kept. A series averaging fewer calls a
day than the disclosure threshold is not forecast on a public page: its history would be mostly
suppressed, and a forecast of a handful of calls describes a handful of people.
"""

from __future__ import annotations

from datetime import date, timedelta

from cswb.analytics import metrics
from cswb.analytics.forecast import TOTAL, ForecastResult, ForecastSpec, forecast
from cswb.analytics.query import AnalyticsError
from cswb.web import figures
from cswb.web.cache import kept
from cswb.web.panel import Column, Panel, chartable, published
from cswb.web.panels import Context
from cswb.web.suppression import suppress_one_way

HORIZON_DAYS = 84
HISTORY_DAYS = 182


def _daily_history(ctx: Context) -> list[tuple[str, int]]:
    table = metrics.volumes(ctx.engine, ctx.calls, "period", "day")
    return [(str(d), int(n)) for d, n in zip(table.column("period"), table.column("calls"),
                                             strict=True)]


def _result(ctx: Context, history: list[tuple[str, int]]) -> ForecastResult:
    """The forecast of the filtered calls, kept per filter and history."""
    key = ("forecast", ctx.filter, len(history), history[-1] if history else None,
           sum(n for _, n in history))
    spec = ForecastSpec(freq="day", horizon=HORIZON_DAYS)
    return kept(key, lambda: forecast(ctx.engine, spec, ctx.calls))


COLUMNS = (Column("date", "Date", "text"), Column("mean", "Forecast", "rate"),
           Column("lo_80", "80% low", "rate"), Column("hi_80", "80% high", "rate"),
           Column("lo_95", "95% low", "rate"), Column("hi_95", "95% high", "rate"))


def forecast_panel(ctx: Context) -> Panel:
    """Calls per day for the next 12 weeks, with the last 26 weeks of history."""
    title = "Calls per day: the next 12 weeks"
    history = _daily_history(ctx)
    mean_daily = sum(n for _, n in history) / len(history) if history else 0
    if mean_daily < ctx.threshold:
        return Panel("forecast", title, "Too few calls per day to forecast publicly.", COLUMNS,
                     [], notes=[f"The filtered calls average {mean_daily:.1f} a day, fewer than "
                                f"the disclosure threshold of {ctx.threshold}; widen the filter."])
    try:
        result = _result(ctx, history)
    except AnalyticsError as exc:
        return Panel("forecast", title, str(exc), COLUMNS, [], notes=[f"{exc}."])
    frame = result.forecasts[result.forecasts["series"] == TOTAL]
    rows = [(str(r.ds)[:10], r.mean, r.lo_80, r.hi_80, r.lo_95, r.hi_95)
            for r in frame.itertuples(index=False)]
    recent = history[-HISTORY_DAYS:]
    shown = published([n for _, n in recent],
                      suppress_one_way([n for _, n in recent], ctx.threshold).hidden)
    columns = {c.key: [row[i] for row in rows] for i, c in enumerate(COLUMNS)}
    columns["ds"] = columns.pop("date")
    report = result.reports[0]
    first, last = rows[0][0], rows[-1][0]
    summary = (f"Expected calls per day from {first} to {last}: on average "
               f"{sum(r[1] for r in rows) / len(rows):.0f} a day (model {report.model}); "
               "the shaded bands are the 80% and 95% prediction intervals.")
    return Panel("forecast", title, summary, COLUMNS, rows,
                 figure=figures.forecast_band(([d for d, _ in recent], chartable(shown)),
                                              columns),
                 notes=[f"Trained on {report.observations:,} days up to "
                        f"{_day_before(first)}; history shown for the last "
                        f"{len(recent)} days.",
                        "The forecast is computed on the first visit for a filter (seconds) "
                        "and kept until the filter or the stored calls change."])


def _day_before(iso: str) -> str:
    return (date.fromisoformat(iso) - timedelta(days=1)).isoformat()


def backtest_panel(ctx: Context) -> Panel:
    """How well each candidate model forecast the past (MASE) and the intervals' coverage."""
    columns = (Column("model", "Model", "text"), Column("mase", "Backtest MASE", "ratio"),
               Column("chosen", "Chosen", "text"))
    history = _daily_history(ctx)
    mean_daily = sum(n for _, n in history) / len(history) if history else 0
    if mean_daily < ctx.threshold:
        return Panel("backtest", "Forecast accuracy", "No forecast for this filter.", columns, [])
    try:
        report = _result(ctx, history).reports[0]
    except AnalyticsError as exc:
        return Panel("backtest", "Forecast accuracy", str(exc), columns, [])
    rows = [(m, v, "yes" if m == report.model else "") for m, v in
            sorted(report.mase.items(), key=lambda kv: kv[1])]
    notes = ["MASE: mean absolute error over 3 rolling origins, 12 weeks each, divided by the "
             "in-sample error of 'same day last week'; below 1 beats it."]
    if report.coverage_80 is not None and report.coverage_95 is not None:
        notes.append(f"In the backtest the 80% interval held {100 * report.coverage_80:.0f}% "
                     f"of actual days and the 95% interval {100 * report.coverage_95:.0f}% "
                     f"({report.interval_method} intervals).")
    summary = (f"The chosen model, {report.model}, had a backtest MASE of "
               f"{report.mase.get(report.model, float('nan')):.2f}.")
    return Panel("backtest", "Forecast accuracy", summary, columns, rows, notes=notes)
