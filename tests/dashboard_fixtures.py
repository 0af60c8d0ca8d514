"""A small synthetic city, ingested, and an engine over it with its true categories and flags.

The classifier fills ``category`` and ``flags`` at ingest, with its own errors.
:func:`classified_engine` gives the dashboard the same stored calls with the synthetic city's
true categories and flags joined on ``call_id`` (a real DuckDB table), so tests know what every
page should show whatever the classifier's accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cswb.analytics.query import DuckDBEngine
from cswb.ingest.mapping import builtin_mapping
from cswb.ingest.pipeline import ingest_file
from cswb.settings import Settings, load_settings
from cswb.storage import AnalyticStore, open_analytic_store
from cswb.storage.sql import lit, run
from cswb.synth import DemoCity, write_demo_city


@dataclass(frozen=True)
class LoadedCity:
    settings: Settings
    store: AnalyticStore
    city: DemoCity


def load_city(root: Path, calls: int = 12_000, seed: int = 11, *,
              classify: bool = True) -> LoadedCity:
    """One year of a small synthetic city ingested into a store under ``root`` (classified at
    ingest unless ``classify`` is false)."""
    city = write_demo_city(root / "city", seed=seed, years=1, calls_per_year=calls)
    settings = load_settings(data_dir=root / "var", duckdb_memory_limit="1GB",
                             store_url=f"duckdb:///{(root / 'store').as_posix()}",
                             area_boundaries=city.neighbourhoods_geojson,
                             populations_path=city.neighbourhoods_csv,
                             classify_at_ingest=classify)
    store = open_analytic_store(settings.resolved_store_url, settings)
    summary = ingest_file(city.export_csv, builtin_mapping(city.mapping_name), store, settings)
    assert summary.reconciles
    return LoadedCity(settings, store, city)


def classified_engine(loaded: LoadedCity) -> DuckDBEngine:
    """An engine whose ``calls`` are the stored calls with the truth's category and flags."""
    con = loaded.store.connect()
    run(con, "ALTER VIEW calls RENAME TO calls_as_stored")
    run(con, "CREATE TABLE calls AS SELECT c.* REPLACE (t.category AS category, "
             "t.flags AS flags) FROM calls_as_stored AS c LEFT JOIN "
             f"read_parquet({lit(str(loaded.city.truth_parquet))}) AS t USING (call_id)")
    return DuckDBEngine(con)
