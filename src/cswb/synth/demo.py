"""The demo data set: the synthetic city's CAD export, its neighbourhoods and its truth."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cswb.synth.city import DEFAULT_LAST_YEAR, build_city
from cswb.synth.export import MAPPING_NAME, write_export
from cswb.synth.geography import write_neighbourhoods

DEMO_CALLS_PER_YEAR = 100_000
"""A city of roughly 200,000 people; three years make 300,000 calls, ingested in seconds."""


@dataclass(frozen=True)
class DemoCity:
    """Files of a demo city, ready for ``cswb ingest --source synthetic_cad``."""

    directory: Path
    name: str
    time_zone: str
    calls: int
    rows: int
    export_csv: Path
    faults_json: Path
    mapping_name: str
    neighbourhoods_geojson: Path
    neighbourhoods_csv: Path
    truth_parquet: Path
    city_json: Path


def write_demo_city(directory: Path, seed: int = 7, years: int = 3,
                    calls_per_year: int = DEMO_CALLS_PER_YEAR, *,
                    last_year: int = DEFAULT_LAST_YEAR, fault_rate: float = 0.01,
                    progress: Callable[[int, int], None] | None = None) -> DemoCity:
    """Write the demo city's files into ``directory`` (created if needed).

    ``calls.csv`` (the native CAD export) with ``calls.faults.json`` beside it,
    ``neighbourhoods.geojson`` and ``neighbourhoods.csv`` (name, population, district, beat),
    ``truth.parquet`` (every call's true category and flags) and ``city.json`` (name, zone,
    bounds, span, seed).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    city = build_city(seed)
    calls = calls_per_year * years
    export = write_export(city, directory / "calls.csv", calls, years=years,
                          last_year=last_year, fault_rate=fault_rate,
                          truth_path=directory / "truth.parquet", progress=progress)
    geojson, table = directory / "neighbourhoods.geojson", directory / "neighbourhoods.csv"
    write_neighbourhoods(city.frame, city.neighbourhoods, geojson, table)
    city_json = directory / "city.json"
    city_json.write_text(json.dumps({
        "name": city.frame.name, "agency": city.frame.agency, "time_zone": city.frame.time_zone,
        "bounds": city.frame.bounds(margin_m=0.0), "first_year": last_year - years + 1,
        "last_year": last_year, "seed": seed, "calls": calls,
        "population": int(city.neighbourhoods.populations.sum()), "mapping": MAPPING_NAME,
    }, indent=1), encoding="utf-8")
    return DemoCity(directory=directory, name=city.frame.name, time_zone=city.frame.time_zone,
                    calls=calls, rows=export.rows, export_csv=export.csv_path,
                    faults_json=export.faults_path, mapping_name=MAPPING_NAME,
                    neighbourhoods_geojson=geojson, neighbourhoods_csv=table,
                    truth_parquet=directory / "truth.parquet", city_json=city_json)
