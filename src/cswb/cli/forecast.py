"""``cswb forecast``: daily or weekly call volumes ahead, the model chosen by backtest."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cswb.analytics.forecast import (
    AUTO_ETS,
    SEASONAL_NAIVE,
    ForecastResult,
    ForecastSpec,
    forecast,
    parse_horizon,
    write_csv,
)
from cswb.analytics.query import AnalyticsError, DuckDBEngine
from cswb.cli.common import console, err_console, store_of


def _date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise AnalyticsError(f"--train-until {text!r} is not a date YYYY-MM-DD") from None


def forecast_command(
    ctx: typer.Context,
    by: Annotated[str, typer.Option(help="One series per category, per area, or none "
                                         "(the total only).")] = "none",
    freq: Annotated[str, typer.Option(help="day or week (Monday-started, whole weeks).")] = "day",
    horizon: Annotated[str, typer.Option(help="How far ahead: 84d, 12w or days.")] = "84d",
    train_until: Annotated[str | None, typer.Option(
        help="Train only on calls before this local date (YYYY-MM-DD).")] = None,
    output: Annotated[Path | None, typer.Option(
        help="Write series,ds,mean,lo_80,hi_80,lo_95,hi_95 to this CSV.", dir_okay=False)] = None,
    windows: Annotated[int, typer.Option(help="Backtest origins (rolling).")] = 3,
    area_level: Annotated[str, typer.Option(help="Area column for --by area.")] = "neighbourhood",
) -> None:
    """Forecast call volumes per series (always with `total`) with 80/95 % intervals; the
    model of each series is chosen by a rolling-origin backtest, whose MASE and interval
    coverage are printed."""
    spec = ForecastSpec(by=by, freq=freq, horizon=parse_horizon(horizon, freq),
                        train_until=_date(train_until), windows=windows, area_level=area_level)
    con = store_of(ctx).connect()
    try:
        result = forecast(DuckDBEngine(con), spec, progress=_progress)
    finally:
        con.close()
    console.print(report_table(result))
    _print_notes(result)
    if output is not None:
        write_csv(result, output)
        console.print(f"Wrote {len(result.forecasts):,} rows to {output}")


def _progress(i: int, n: int, name: str) -> None:
    err_console.print(f"[dim]backtesting and forecasting series {i}/{n}: {name}[/dim]")


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if pct else f"{value:.3f}"


def report_table(result: ForecastResult) -> Table:
    """The backtest report: MASE of the baselines and the chosen model, interval coverage."""
    spec = result.spec
    table = Table("series", "obs", "MASE snaive", "MASE ETS", "chosen",
                  "MASE chosen", "intervals", "80% cover", "95% cover",
                  title=f"Backtest: {spec.windows} origins x {spec.horizon} {spec.freq}s; MASE "
                        f"scaled by the one-week seasonal naive; snaive = {SEASONAL_NAIVE}, "
                        f"ETS = {AUTO_ETS} with defaults")
    for r in result.reports:
        table.add_row(r.series, str(r.observations), _fmt(r.mase.get(SEASONAL_NAIVE)),
                      _fmt(r.mase.get(AUTO_ETS)), r.model, _fmt(r.mase.get(r.model)),
                      r.interval_method if r.mase else "-",
                      _fmt(r.coverage_80, True), _fmt(r.coverage_95, True))
    return table


def _print_notes(result: ForecastResult) -> None:
    for r in result.reports:
        if r.note:
            console.print(f"{r.series}: {r.note}")


def register(app: typer.Typer) -> None:
    app.command("forecast")(forecast_command)
