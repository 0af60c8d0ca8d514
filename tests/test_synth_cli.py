"""``cswb synth city`` and ``cswb synth export``, and the demo data API."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from cswb.cli.main import app
from cswb.synth import write_demo_city

runner = CliRunner()


def test_synth_export_writes_the_csv_and_its_sidecar(tmp_path: Path) -> None:
    out = tmp_path / "export.csv"
    result = runner.invoke(app, ["synth", "export", "--calls", "3000", "--out", str(out),
                                 "--seed", "2", "--years", "1", "--faults", "0.02", "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    sidecar = json.loads((tmp_path / "export.faults.json").read_text())
    assert sidecar["calls"] == 3000 and sidecar["seed"] == 2 and sidecar["fault_rate"] == 0.02
    assert sum(k["count"] for k in sidecar["faults"].values()) == 60
    with open(out, newline="", encoding="utf-8") as handle:
        assert sum(1 for _ in csv.reader(handle)) == sidecar["rows"] + 1


def test_synth_export_prints_what_the_ingest_must_report(tmp_path: Path) -> None:
    out = tmp_path / "export.csv"
    result = runner.invoke(app, ["synth", "export", "--calls", "2000", "--out", str(out),
                                 "--truth", str(tmp_path / "truth.parquet")])
    assert result.exit_code == 0, result.output
    assert "rows written" in result.output and "quarantined" in result.output
    assert pq.read_table(tmp_path / "truth.parquet").num_rows == 2000


def test_synth_city_writes_the_demo_files(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "city", "--out", str(tmp_path / "demo"), "--years", "1",
                                 "--calls-per-year", "4000"])
    assert result.exit_code == 0, result.output
    assert "synthetic_cad" in result.output
    names = {p.name for p in (tmp_path / "demo").iterdir()}
    assert names == {"calls.csv", "calls.faults.json", "neighbourhoods.geojson",
                     "neighbourhoods.csv", "truth.parquet", "city.json"}


def test_write_demo_city_describes_its_files(tmp_path: Path) -> None:
    demo = write_demo_city(tmp_path, seed=9, years=2, calls_per_year=2_500)
    assert demo.mapping_name == "synthetic_cad"
    assert demo.calls == 5_000
    assert demo.export_csv.is_file() and demo.truth_parquet.is_file()
    geojson = json.loads(demo.neighbourhoods_geojson.read_text())
    assert geojson["type"] == "FeatureCollection" and len(geojson["features"]) == 24
    with open(demo.neighbourhoods_csv, newline="", encoding="utf-8") as handle:
        hoods = list(csv.DictReader(handle))
    assert [h["name"] for h in hoods] == [f["properties"]["name"] for f in geojson["features"]]
    assert all(int(h["population"]) > 0 for h in hoods)
    city = json.loads(demo.city_json.read_text())
    assert city["time_zone"] == "America/Chicago" and city["first_year"] == 2023


def test_synth_export_refuses_a_bad_fault_rate(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "export", "--calls", "10", "--out",
                                 str(tmp_path / "x.csv"), "--faults", "0.9"])
    assert result.exit_code != 0
