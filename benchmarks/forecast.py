"""Forecast benchmark: backtest accuracy on three data sets and the cost of choosing models.

    python benchmarks/forecast.py [--workdir benchmarks/out] [--horizon 84] [--skip-real]

Data sets (daily counts, one series per category or type plus ``total``):

- the demo city (3 years, 300,000 calls; categories from its truth table, since the classifier
  fills them in the store later);
- Seattle 2015 (``../shared/data/calls/seattle_2015``, total only: no categories yet);
- Vancouver 2020-2025 crime incidents by type (``../shared/data/incidents``).

For each it prints the mean backtest MASE (scaled by the one-week seasonal naive) of the seasonal
naive, default AutoETS and the chosen model, and the mean interval coverage. Target (issue 4):
the chosen model beats both baselines. On the demo city it also times forecasting all categories
(backtest, choice, final fit) against the seasonal naive alone (fit and forecast only), in CPU
seconds, and prints the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared" / "data"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=HERE / "out")
    parser.add_argument("--horizon", type=int, default=84)
    parser.add_argument("--shared-data", type=Path, default=SHARED)
    parser.add_argument("--skip-real", action="store_true", help="only the demo city")
    return parser.parse_args()


def demo_counts(workdir: Path) -> pd.DataFrame:
    """Daily calls per true category of the demo city, ingested through the real pipeline."""
    from cswb.analytics.forecast import ForecastSpec, call_counts
    from cswb.analytics.query import DuckDBEngine
    from cswb.ingest.mapping import builtin_mapping
    from cswb.ingest.pipeline import ingest_file
    from cswb.settings import load_settings
    from cswb.storage import open_analytic_store
    from cswb.storage.sql import lit, run
    from cswb.synth.demo import write_demo_city

    folder = workdir / "forecast_demo"
    settings = load_settings(data_dir=folder / "var")
    store = open_analytic_store(settings.resolved_store_url, settings)
    if not (folder / "truth.parquet").exists() or not store.read_manifest().tables:
        city = write_demo_city(folder)
        ingest_file(city.export_csv, builtin_mapping(city.mapping_name), store, settings)
    con = store.engine()
    calls = store.table_sql("calls", store.read_manifest())
    truth = lit(str(folder / "truth.parquet"))
    run(con, f"CREATE VIEW calls AS SELECT c.* REPLACE (t.category AS category, t.flags AS "
             f"flags) FROM ({calls}) AS c LEFT JOIN read_parquet({truth}) AS t USING (call_id)")
    return call_counts(DuckDBEngine(con), ForecastSpec(by="category"))


def seattle_counts(shared: Path, workdir: Path) -> pd.DataFrame:
    from cswb.analytics.forecast import ForecastSpec, call_counts
    from cswb.analytics.query import DuckDBEngine
    from cswb.ingest.mapping import builtin_mapping
    from cswb.ingest.pipeline import ingest_file
    from cswb.settings import load_settings
    from cswb.storage import open_analytic_store

    settings = load_settings(data_dir=workdir / "forecast_seattle" / "var")
    store = open_analytic_store(settings.resolved_store_url, settings)
    if not store.read_manifest().tables:
        path = next((shared / "calls" / "seattle_2015").glob("*.csv"))
        ingest_file(path, builtin_mapping("seattle_2015"), store, settings)
    con = store.connect()
    return call_counts(DuckDBEngine(con), ForecastSpec(by="none"))


def vancouver_counts(shared: Path) -> pd.DataFrame:
    import duckdb

    from cswb.analytics.forecast import TOTAL, ForecastSpec, _complete

    files = str(shared / "incidents" / "vancouver_2020_2026" / "crimedata_csv_*.csv")
    rel = duckdb.sql(f"SELECT TYPE AS unique_id, make_date(YEAR, MONTH, DAY) AS ds, "
                     f"count(*) AS y FROM read_csv('{files}', header = true) "
                     "WHERE YEAR BETWEEN 2020 AND 2025 GROUP BY 1, 2")
    frame = rel.df()
    total = frame.groupby("ds", as_index=False)["y"].sum().assign(unique_id=TOTAL)
    return _complete(pd.concat([frame, total], ignore_index=True), ForecastSpec())


def evaluate(name: str, counts: pd.DataFrame, horizon: int) -> tuple[float, float]:
    """Backtest every series; print mean MASE and coverage; return (CPU s, seasonal-naive s)."""
    from cswb.analytics.forecast import AUTO_ETS, SEASONAL_NAIVE, ForecastSpec, forecast_frame

    spec = ForecastSpec(by="category", horizon=horizon)
    started = time.process_time()
    result = forecast_frame(counts, spec)
    ours = time.process_time() - started
    naive = time_seasonal_naive(counts, horizon)
    tested = [r for r in result.reports if r.mase]
    print(f"\n{name}: {counts['unique_id'].nunique()} series, {len(counts):,} series-days, "
          f"{len(tested)} backtested ({spec.windows} origins x {horizon} days)")
    if not tested:
        print("  no series long enough for a backtest")
        return ours, naive
    snaive = np.mean([r.mase[SEASONAL_NAIVE] for r in tested])
    ets = np.mean([r.mase[AUTO_ETS] for r in tested])
    chosen = np.mean([r.mase[r.model] for r in tested])
    cov80 = np.mean([r.coverage_80 for r in tested])
    cov95 = np.mean([r.coverage_95 for r in tested])
    picks = pd.Series([r.model for r in tested]).value_counts().to_dict()
    print(f"  mean MASE  seasonal naive {snaive:.3f}  AutoETS {ets:.3f}  chosen {chosen:.3f}"
          f"   target: chosen < both -> {'MET' if chosen < min(snaive, ets) else 'NOT MET'}")
    print(f"  interval coverage (backtest)  80%: {cov80:.0%}  95%: {cov95:.0%}   picks: {picks}")
    for r in tested:
        print(f"    {r.series:<28} snaive {r.mase[SEASONAL_NAIVE]:.3f}  ETS "
              f"{r.mase[AUTO_ETS]:.3f}  {r.model:<13} {r.mase[r.model]:.3f}  "
              f"cover {r.coverage_80:.0%}/{r.coverage_95:.0%} ({r.interval_method})")
    return ours, naive


def time_seasonal_naive(counts: pd.DataFrame, horizon: int) -> float:
    """CPU seconds to fit and forecast every series with the seasonal naive alone."""
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    started = time.process_time()
    sf = StatsForecast(models=[SeasonalNaive(season_length=7)], freq="D", n_jobs=1)
    sf.forecast(df=counts, h=horizon, level=[80, 95])
    return time.process_time() - started


def main() -> int:
    args = parse_args()
    warnings.simplefilter("ignore")
    args.workdir.mkdir(parents=True, exist_ok=True)
    ours, naive = evaluate("demo city (categories from truth)", demo_counts(args.workdir),
                           args.horizon)
    print(f"\ndemo city, all categories and total: backtest + choice + forecast {ours:.1f} CPU s;"
          f" seasonal naive alone {naive:.2f} CPU s; ratio {ours / max(naive, 1e-9):.0f}x")
    if args.skip_real:
        return 0
    if not args.shared_data.is_dir():
        print(f"\n{args.shared_data} not found: real data sets skipped")
        return 0
    evaluate("Seattle 2015 (total)", seattle_counts(args.shared_data, args.workdir),
             args.horizon)
    evaluate("Vancouver 2020-2025 incidents by type", vancouver_counts(args.shared_data),
             args.horizon)
    return 0


if __name__ == "__main__":
    sys.exit(main())
