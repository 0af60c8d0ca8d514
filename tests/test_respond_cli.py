"""``cswb respond`` end to end on a small synthetic city, classified from its truth table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cswb.cli.main import app
from cswb.errors import NoClassifiedCallsError, PolicyError, TargetUnreachableError
from cswb.respond.policy import load_policy
from cswb.settings import Settings
from cswb.storage import AnalyticStore
from cswb.synth.demo import write_demo_city
from tests.helpers import ingest_builtin


def invoke(settings: Settings, *args: str) -> Any:
    env = {"CSWB_DATA_DIR": str(settings.data_dir), "CSWB_STORE_URL": settings.resolved_store_url,
           "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def truth(tmp_path: Path, store: AnalyticStore, settings: Settings) -> Path:
    city = write_demo_city(tmp_path / "city", years=1, calls_per_year=4000, fault_rate=0.0)
    unclassified = settings.model_copy(update={"classify_at_ingest": False})
    ingest_builtin(store, unclassified, city.mapping_name, city.export_csv)
    return city.truth_parquet


def test_unclassified_store_says_what_to_do(truth: Path, settings: Settings) -> None:
    result = invoke(settings, "respond", "scenario")
    assert isinstance(result.exception, NoClassifiedCallsError)
    assert "none of the 4,000 calls is classified" in str(result.exception)


def test_scenario_of_the_classified_store(truth: Path, settings: Settings) -> None:
    assert invoke(settings, "classify", "apply").exit_code == 0
    result = invoke(settings, "respond", "scenario", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["classified_calls"] == data["calls"] == 4000
    assert sum(t["calls"] for t in data["tiers"]) == 4000


def test_scenario_json_adds_up(truth: Path, settings: Settings) -> None:
    result = invoke(settings, "respond", "scenario", "--truth", str(truth), "--by", "area",
                    "--area", "neighbourhood", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["classified_calls"] == data["calls"] == 4000
    assert sum(t["calls"] for t in data["tiers"]) == 4000
    assert sum(r["calls"] for r in data["breakdown"]) + data["breakdown_missing"] == 4000
    assert 0 < data["diverted_share"] < 1
    assert sum(r["calls"] for r in data["rules"]) == 4000
    text = invoke(settings, "respond", "scenario", "--truth", str(truth), "--by", "hour_of_week",
                  "--baseline", "default")
    assert "Diverted from police" in text.output and "Mon 00" in text.output
    assert "0 calls change tier against cswb-default v1" in text.output


def test_staffing_plan_and_impossible_target(truth: Path, settings: Settings) -> None:
    args = ["respond", "staffing", "--truth", str(truth), "--weeks", "3", "--replications", "3"]
    impossible = invoke(settings, *args)
    assert isinstance(impossible.exception, TargetUnreachableError)
    result = invoke(settings, *args, "--target-minutes", "45", "--target-share", "0.85",
                    "--arrivals-per-week", "60", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["arrivals"]["per_week"] == pytest.approx(60)
    assert len(data["simulation"]["teams_by_hour_of_week"]) == 168
    assert data["simulation"]["annual_cost"] > data["simulation"]["weekly_cost"] > 0
    text = invoke(settings, *args, "--target-minutes", "45", "--target-share", "0.85")
    assert "Erlang C against simulation" in text.output
    weekly = invoke(settings, *args, "--target-minutes", "45", "--target-share", "0.85",
                    "--scope", "week")
    assert "over the whole week" in weekly.output


def test_policy_command_validates_a_file(tmp_path: Path, settings: Settings) -> None:
    assert "person_in_crisis" in invoke(settings, "respond", "policy").output
    dumped = json.loads(invoke(settings, "respond", "policy", "--json").output)
    assert dumped["rules"][0]["id"] == "officer_status" and dumped["default_tier"] == "police"
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\ndefault_tier: police\nrules:\n  - {id: a, tier: police, "
                   "categories: [nope], rationale: a reason long enough}\n", encoding="utf-8")
    good = tmp_path / "good.yaml"
    good.write_text(bad.read_text().replace("[nope]", "[medical]"), encoding="utf-8")
    assert "category medical" in invoke(settings, "respond", "policy", "--policy", str(good)).output
    with pytest.raises(PolicyError, match="rule 'a' \\(rule 1\\): categories: unknown category"):
        load_policy(bad)


@pytest.mark.shared_data
def test_fit_times_writes_json(shared_data: Path, tmp_path: Path, settings: Settings) -> None:
    out = tmp_path / "times.json"
    path = shared_data / "crisis_teams" / "lane_county_mcslc" / "dispatches.csv"
    result = invoke(settings, "respond", "fit-times", str(path), "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "P90 31 min" in result.output
    assert json.loads(out.read_text())["travel"]["kind"] == "quantiles"
