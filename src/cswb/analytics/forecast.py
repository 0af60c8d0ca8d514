"""Forecasts of daily or weekly call volumes per series, the model chosen by backtest.

Series are counts of calls per day (or per Monday-started week) for each category, area or
nothing but the total, always with a ``total`` series. For each series, candidate models from
statsforecast are compared by a rolling-origin backtest (``windows`` origins, each forecasting
``horizon`` steps, spaced ``horizon`` apart, every origin using only what came before it); the
model with the lowest mean MASE wins and is refitted on the whole history. MASE is scaled by the
in-sample error of the one-week seasonal naive (lag 7 days, or 1 week for weekly series), so a
MASE below 1 beats "same as last week" on the training data. The 80 % and 95 % intervals are
the model's own, or quantiles of its backtest errors when those cover closer to nominal (judged
leaving one origin out); their empirical coverage in the backtest is reported. See
``docs/analytics.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cswb.analytics.metrics import UNCLASSIFIED
from cswb.analytics.query import AnalyticsError, CallFilter, Engine
from cswb.analytics.rollup import source_for
from cswb.files import atomic_write

OUTPUT_COLUMNS: tuple[str, ...] = ("series", "ds", "mean", "lo_80", "hi_80", "lo_95", "hi_95")
"""The forecast CSV's columns, in order (the contract other tools read)."""

LEVELS = (80, 95)
SEASONAL_NAIVE, AUTO_ETS, AUTO_THETA, MSTL_ETS = ("SeasonalNaive", "AutoETS", "AutoTheta",
                                                  "MSTL")
TOTAL = "total"
BY_CHOICES: tuple[str, ...] = ("category", "area", "none")

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ForecastSpec:
    """What to forecast: grouping, frequency, horizon (in steps of ``freq``), cut-off."""

    by: str = "none"
    freq: str = "day"
    horizon: int = 84
    train_until: date | None = None
    windows: int = 3
    area_level: str = "neighbourhood"

    def __post_init__(self) -> None:
        if self.by not in BY_CHOICES:
            raise AnalyticsError(f"--by must be one of {', '.join(BY_CHOICES)}")
        if self.freq not in ("day", "week"):
            raise AnalyticsError("--freq must be day or week")
        if self.horizon < 1 or self.windows < 1:
            raise AnalyticsError("the horizon and the backtest windows must be at least 1")

    @property
    def week_lag(self) -> int:
        """Steps in one week: the lag of the seasonal naive that scales MASE."""
        return 7 if self.freq == "day" else 1

    @property
    def season(self) -> int:
        """The season length models use: a week of days, or a year of weeks."""
        return 7 if self.freq == "day" else 52


def parse_horizon(text: str, freq: str) -> int:
    """``84d``, ``12w`` or a bare number of days, as steps of ``freq`` (weeks round up)."""
    value = text.strip().lower()
    unit = value[-1] if value[-1:] in ("d", "w") else "d"
    number = value[:-1] if value[-1:] in ("d", "w") else value
    if not number.isdigit() or int(number) < 1:
        raise AnalyticsError(f"horizon {text!r} is not a number of days or weeks such as 84d "
                             "or 12w")
    days = int(number) * (7 if unit == "w" else 1)
    return days if freq == "day" else -(-days // 7)


@dataclass
class SeriesReport:
    """How one series was forecast: history, backtest MASE per model, coverage, notes."""

    series: str
    observations: int
    model: str
    mase: dict[str, float] = field(default_factory=dict)
    coverage_80: float | None = None
    coverage_95: float | None = None
    interval_method: str = "model"
    """``model`` (the model's own intervals) or ``backtest`` (quantiles of backtest errors)."""
    note: str = ""
    error_quantiles: dict[str, float] = field(default_factory=dict, repr=False)


@dataclass
class ForecastResult:
    """Forecasts (columns :data:`OUTPUT_COLUMNS`) and the backtest report of each series."""

    spec: ForecastSpec
    forecasts: pd.DataFrame
    reports: list[SeriesReport]


def call_counts(engine: Engine, spec: ForecastSpec, flt: CallFilter | None = None
                ) -> pd.DataFrame:
    """Calls per series and day before ``train_until`` (columns ``unique_id, ds, y``), with
    the ``total`` series, zero-filled over the whole span of the history."""
    flt = (flt or CallFilter()).but(area_level=spec.area_level)
    if spec.train_until is not None:
        before = spec.train_until - timedelta(days=1)
        flt = flt.but(date_to=min(before, flt.date_to) if flt.date_to else before)
    key = {"category": f"coalesce(category, '{UNCLASSIFIED}')",
           "area": f"coalesce({spec.area_level}, '(none)')", "none": f"'{TOTAL}'"}[spec.by]
    src = source_for(engine, flt)
    rows = engine.rows(f"SELECT {key}, local_date, {src.count()} FROM {src.relation}"
                       f"{flt.where(engine.dialect, 'local_date IS NOT NULL')} GROUP BY 1, 2")
    if not rows:
        raise AnalyticsError("no calls with a date match the filter and cut-off: nothing to "
                             "forecast")
    frame = pd.DataFrame(rows, columns=["unique_id", "ds", "y"])
    if spec.by == "category" and set(frame["unique_id"]) == {UNCLASSIFIED}:
        raise AnalyticsError("no call is classified yet, so there are no categories to "
                             "forecast; classify the calls first, or use --by none for the total")
    if spec.by != "none":
        total = frame.groupby("ds", as_index=False)["y"].sum().assign(unique_id=TOTAL)
        frame = pd.concat([frame, total], ignore_index=True)
    return _complete(frame, spec)


def _complete(frame: pd.DataFrame, spec: ForecastSpec) -> pd.DataFrame:
    frame["ds"] = pd.to_datetime(frame["ds"])
    days = pd.date_range(frame["ds"].min(), frame["ds"].max(), freq="D")
    full = pd.MultiIndex.from_product([sorted(frame["unique_id"].unique()), days],
                                      names=["unique_id", "ds"])
    out = (frame.groupby(["unique_id", "ds"])["y"].sum().reindex(full, fill_value=0)
           .reset_index())
    if spec.freq == "week":
        out = _weekly(out)
    out["y"] = out["y"].astype(float)
    return out


def _weekly(daily: pd.DataFrame) -> pd.DataFrame:
    """Monday-started weeks, whole weeks only (a partial first or last week would look low)."""
    daily = daily.assign(week=daily["ds"] - pd.to_timedelta(daily["ds"].dt.weekday, unit="D"))
    grouped = daily.groupby(["unique_id", "week"]).agg(y=("y", "sum"), days=("y", "size"))
    whole = grouped[grouped["days"] == 7].reset_index()
    return whole.rename(columns={"week": "ds"})[["unique_id", "ds", "y"]]


def candidate_models(spec: ForecastSpec, observations: int) -> list[Any]:
    """Seasonal naive, AutoETS with defaults, AutoTheta, and MSTL (weekly and yearly cycles
    of daily series with two years or more of history)."""
    from statsforecast.models import MSTL, AutoETS, AutoTheta, SeasonalNaive

    first_origin = observations - spec.windows * spec.horizon
    season = spec.season if first_origin >= 2 * spec.season else spec.week_lag
    models: list[Any] = [SeasonalNaive(season_length=spec.week_lag),
                         AutoETS(season_length=season), AutoTheta(season_length=season)]
    if spec.freq == "day" and first_origin >= 2 * 365:
        models.append(MSTL(season_length=[7, 365], trend_forecaster=AutoETS(model="ZZN")))
    return models


def min_history(spec: ForecastSpec) -> int:
    """Observations needed for a backtest: every window, plus two weeks (or eight weeks of a
    weekly series) to fit before the first origin."""
    return spec.windows * spec.horizon + max(2 * spec.week_lag, 8)


def forecast(engine: Engine, spec: ForecastSpec, flt: CallFilter | None = None,
             progress: Progress | None = None) -> ForecastResult:
    """Backtest, choose and forecast every series (see the module's description)."""
    counts = call_counts(engine, spec, flt)
    return forecast_frame(counts, spec, progress)


def forecast_frame(counts: pd.DataFrame, spec: ForecastSpec,
                   progress: Progress | None = None) -> ForecastResult:
    """The same from a frame of ``unique_id, ds, y`` (complete, ordered series)."""
    names = sorted(counts["unique_id"].unique(), key=lambda s: (s != TOTAL, s))
    reports, frames = [], []
    for i, name in enumerate(names, 1):
        if progress:
            progress(i, len(names), name)
        series = counts[counts["unique_id"] == name].sort_values("ds").reset_index(drop=True)
        report, model = _choose(series, spec, name)
        reports.append(report)
        frames.append(_final(series, spec, model, report))
    return ForecastResult(spec, pd.concat(frames, ignore_index=True), reports)


def _choose(series: pd.DataFrame, spec: ForecastSpec, name: str) -> tuple[SeriesReport, Any]:
    n = len(series)
    models = candidate_models(spec, n)
    if n < min_history(spec):
        note = (f"too little history ({n} {spec.freq}s; a backtest of {spec.windows} x "
                f"{spec.horizon} needs {min_history(spec)}): seasonal naive, not backtested")
        from statsforecast.models import SeasonalNaive

        return (SeriesReport(name, n, SEASONAL_NAIVE, note=note),
                SeasonalNaive(season_length=min(spec.week_lag, n)))
    cv = _backtest(series, spec, models)
    scale = _mase_scale(series["y"].to_numpy(), spec)
    mase = {_name(m): _mase(cv, _name(m), scale) for m in models}
    best = min(mase, key=lambda k: (not np.isfinite(mase[k]), mase[k]))
    chosen = next(m for m in models if _name(m) == best)
    report = SeriesReport(name, n, best, mase)
    _choose_intervals(report, cv, best)
    return report, chosen


def _choose_intervals(report: SeriesReport, cv: pd.DataFrame, model: str) -> None:
    """Keep the model's own intervals, or use quantiles of its backtest errors, whichever
    covers closer to the nominal 80 and 95 % in the backtest. The error quantiles are judged
    leaving one origin out (quantiles from the others), so their coverage is out of sample."""
    own = [float(((cv["y"] >= cv[f"{model}-lo-{lv}"]) & (cv["y"] <= cv[f"{model}-hi-{lv}"]))
                 .mean()) for lv in LEVELS]
    report.coverage_80, report.coverage_95 = own
    errors = (cv["y"] - cv[model]).to_numpy()
    cutoffs = cv["cutoff"].to_numpy()
    if len(set(cutoffs)) < 2:
        return
    held_out = [_held_out_coverage(cv, model, errors, cutoffs, lv) for lv in LEVELS]
    if _miss(held_out) < _miss(own):
        report.coverage_80, report.coverage_95 = held_out
        report.interval_method = "backtest"
        report.error_quantiles = {f"{side}_{lv}": float(np.quantile(errors, q))
                                  for lv in LEVELS
                                  for side, q in (("lo", (1 - lv / 100) / 2),
                                                  ("hi", (1 + lv / 100) / 2))}


def _held_out_coverage(cv: pd.DataFrame, model: str, errors: np.ndarray, cutoffs: np.ndarray,
                       level: int) -> float:
    inside = []
    for origin in np.unique(cutoffs):
        train, test = errors[cutoffs != origin], cutoffs == origin
        lo, hi = np.quantile(train, [(1 - level / 100) / 2, (1 + level / 100) / 2])
        y, mean = cv["y"].to_numpy()[test], cv[model].to_numpy()[test]
        inside.append(float(((y >= mean + lo) & (y <= mean + hi)).mean()))
    return float(np.mean(inside))


def _miss(coverage: list[float]) -> float:
    return sum(abs(c - lv / 100) for c, lv in zip(coverage, LEVELS, strict=True))


def _name(model: Any) -> str:
    return str(model.alias)


def _backtest(series: pd.DataFrame, spec: ForecastSpec, models: list[Any]) -> pd.DataFrame:
    from statsforecast import StatsForecast

    sf = StatsForecast(models=models, freq=_pandas_freq(spec), n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = sf.cross_validation(df=series, h=spec.horizon, n_windows=spec.windows,
                                 step_size=spec.horizon, level=list(LEVELS))
    return cv.reset_index() if "unique_id" not in cv.columns else cv


def _mase_scale(y: np.ndarray, spec: ForecastSpec) -> float:
    """In-sample mean absolute error of the one-week seasonal naive (the MASE denominator)."""
    lag = spec.week_lag
    diffs = np.abs(y[lag:] - y[:-lag])
    scale = float(diffs.mean()) if len(diffs) else 0.0
    return scale if scale > 0 else 1.0


def _mase(cv: pd.DataFrame, model: str, scale: float) -> float:
    return float(np.abs(cv["y"] - cv[model]).mean() / scale)


def _final(series: pd.DataFrame, spec: ForecastSpec, model: Any,
           report: SeriesReport) -> pd.DataFrame:
    from statsforecast import StatsForecast

    sf = StatsForecast(models=[model], freq=_pandas_freq(spec), n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = sf.forecast(df=series, h=spec.horizon, level=list(LEVELS))
    fc = fc.reset_index() if "unique_id" not in fc.columns else fc
    alias = _name(model)
    out = pd.DataFrame({"series": report.series, "ds": pd.to_datetime(fc["ds"]).dt.date,
                        "mean": fc[alias]})
    for lv in LEVELS:
        for side in ("lo", "hi"):
            out[f"{side}_{lv}"] = (out["mean"] + report.error_quantiles[f"{side}_{lv}"]
                                   if report.interval_method == "backtest"
                                   else fc[f"{alias}-{side}-{lv}"])
    numeric = list(OUTPUT_COLUMNS[2:])
    out[numeric] = out[numeric].clip(lower=0).round(3)  # call counts are never negative
    return out


def _pandas_freq(spec: ForecastSpec) -> str:
    return "D" if spec.freq == "day" else "W-MON"


def write_csv(result: ForecastResult, path: Path) -> None:
    """Write the forecasts with exactly :data:`OUTPUT_COLUMNS` (atomically)."""
    atomic_write(path, result.forecasts[list(OUTPUT_COLUMNS)].to_csv(index=False))
