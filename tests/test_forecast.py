"""Forecasting: the backtest picks a better model than naive, no leak past the cut-off, the CSV."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cswb.analytics.forecast import (
    OUTPUT_COLUMNS,
    SEASONAL_NAIVE,
    ForecastSpec,
    forecast,
    forecast_frame,
    parse_horizon,
)
from cswb.analytics.query import AnalyticsError, CallFilter, DuckDBEngine
from cswb.cli.main import app
from cswb.settings import Settings
from cswb.storage import AnalyticStore
from cswb.storage.sql import run
from tests.helpers import ingest_builtin

START = date(2022, 1, 3)


def seasonal_counts(days: int, seed: int = 0) -> np.ndarray:
    """Poisson counts around a weekly and a yearly cycle (the known seasonality)."""
    t = np.arange(days)
    rate = 60 + 20 * np.sin(2 * np.pi * t / 7) + 10 * np.sin(2 * np.pi * t / 365.25)
    return np.random.default_rng(seed).poisson(rate)


def engine_from_counts(per_category: dict[str, np.ndarray]) -> DuckDBEngine:
    """A ``calls`` table with ``counts[i]`` calls of each category on day i."""
    frames = [pd.DataFrame({"category": cat, "local_date": pd.date_range(START, periods=len(c)),
                            "n": c}) for cat, c in per_category.items()]
    con = duckdb.connect()
    con.register("counts", pd.concat(frames, ignore_index=True))
    run(con, "CREATE TABLE calls AS SELECT category, CAST(local_date AS DATE) AS local_date, "
             "CAST(NULL AS VARCHAR) AS neighbourhood, CAST(NULL AS VARCHAR) AS source, "
             "CAST(NULL AS VARCHAR[]) AS flags FROM counts, range(n)")
    return DuckDBEngine(con)


def test_chosen_model_beats_seasonal_naive_on_known_seasonality() -> None:
    frame = pd.DataFrame({"unique_id": "total", "ds": pd.date_range(START, periods=700),
                          "y": seasonal_counts(700).astype(float)})
    result = forecast_frame(frame, ForecastSpec(horizon=28))
    (report,) = result.reports
    assert report.model != SEASONAL_NAIVE
    assert report.mase[report.model] < report.mase[SEASONAL_NAIVE]
    assert report.coverage_80 is not None and 0.5 < report.coverage_80 <= 1
    assert report.interval_method in {"model", "backtest"}
    assert len(result.forecasts) == 28 and (result.forecasts["lo_95"] >= 0).all()
    assert (result.forecasts["lo_95"] <= result.forecasts["mean"]).all()


def test_train_until_never_leaks() -> None:
    base = seasonal_counts(400)
    changed = base.copy()
    changed[300:] = changed[300:] * 3 + 50  # a different future after the cut-off
    cut = (pd.Timestamp(START) + pd.Timedelta(days=300)).date()
    spec = ForecastSpec(by="category", horizon=14, train_until=cut, windows=2)
    a = forecast(engine_from_counts({"medical": base, "fire": base // 3}), spec)
    b = forecast(engine_from_counts({"medical": changed, "fire": changed // 3}), spec)
    pd.testing.assert_frame_equal(a.forecasts, b.forecasts)
    assert a.forecasts["ds"].min() == cut
    assert set(a.forecasts["series"]) == {"total", "medical", "fire"}


def test_short_series_fall_back_to_seasonal_naive() -> None:
    engine = engine_from_counts({"fire": seasonal_counts(30)})
    result = forecast(engine, ForecastSpec(by="category", horizon=84))
    assert all(r.model == SEASONAL_NAIVE and "too little history" in r.note
               for r in result.reports)
    assert len(result.forecasts) == 2 * 84


def test_categories_must_be_classified() -> None:
    engine = engine_from_counts({"x": seasonal_counts(30)})
    run(engine.con, "UPDATE calls SET category = NULL")
    with pytest.raises(AnalyticsError, match="classified"):
        forecast(engine, ForecastSpec(by="category", horizon=7))
    assert forecast(engine, ForecastSpec(by="none", horizon=7)).reports[0].series == "total"


def test_horizon_parsing() -> None:
    assert parse_horizon("84d", "day") == 84 and parse_horizon("84d", "week") == 12
    assert parse_horizon("12w", "day") == 84 and parse_horizon("10", "week") == 2
    with pytest.raises(AnalyticsError, match="horizon"):
        parse_horizon("soon", "day")
    with pytest.raises(AnalyticsError):
        ForecastSpec(by="galaxy")
    with pytest.raises(AnalyticsError):
        forecast(engine_from_counts({"x": seasonal_counts(10)}),
                 ForecastSpec(train_until=date(2000, 1, 1)), CallFilter())


@pytest.mark.shared_data
def test_cli_csv_contract(shared_data: Path, store: AnalyticStore, settings: Settings,
                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_builtin(store, settings, "milwaukee_2018", shared_data / "calls/milwaukee_2018/data.csv")
    monkeypatch.setenv("CSWB_STORE_URL", settings.resolved_store_url)
    out = tmp_path / "fc.csv"
    result = CliRunner().invoke(app, ["forecast", "--by", "none", "--freq", "day", "--horizon",
                                      "14d", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "MASE" in result.output and "total" in result.output
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == OUTPUT_COLUMNS and len(rows) == 15
    assert {r[0] for r in rows[1:]} == {"total"}
    bad = CliRunner().invoke(app, ["forecast", "--by", "category"])
    # main() turns the error into its message and exit status 7
    assert isinstance(bad.exception, AnalyticsError) and "classified" in str(bad.exception)
    assert AnalyticsError.exit_code == 7
