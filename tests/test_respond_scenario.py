"""Response scenarios on a small hand-built set of calls with hand-computed answers."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from cswb.domain.calls import call_schema_sql
from cswb.errors import NoClassifiedCallsError
from cswb.respond.policy import load_policy, policy_from_data
from cswb.respond.scenario import hour_of_week_label, run_scenario

# category, flags, priority, dispatched, arrived, cleared, local_date, local_hour, district
CALLS: list[tuple[Any, ...]] = [
    # 1 crisis, 1 h on scene, usable                        -> civilian_crisis
    ("behavioral_health", ["mental_health"], 3, "09:50", "10:00", "11:00", "2024-01-01", 10, "D1"),
    # 2 crisis, never cleared: imputed with row 1's 1 h      -> civilian_crisis
    ("behavioral_health", ["mental_health"], 3, "09:50", "10:00", None, "2024-01-01", 10, "D1"),
    # 3 past theft, no unit sent: 0 h, not attended          -> alternative_reporting
    ("property_crime", [], 4, None, None, None, "2024-01-02", 3, "D2"),
    # 4 violence in progress, 2.5 h                          -> police_emergency
    ("violent_crime", ["violence", "in_progress"], 1, "11:55", "12:00", "14:30", "2024-01-01",
     12, "D2"),
    # 5 traffic, 0.5 h                                       -> police
    ("traffic", [], 3, "07:55", "08:00", "08:30", "2024-01-01", 8, "D1"),
    # 6 traffic cleared 2 days later: implausible, imputed 0.5 h, no hour -> police
    ("traffic", [], 3, "07:55", "08:00", "+2d", "2024-01-01", None, "D1"),
    # 7 not classified yet: left out of the scenario
    (None, None, 2, "07:55", "08:00", "09:00", "2024-01-01", 8, "D1"),
    # 8 premise check, 0.25 h, Sunday 23:00                  -> officer_activity
    ("officer_status", [], 4, "23:00", "23:00", "23:15", "2024-01-07", 23, "D2"),
]


def _ts(day: str, clock: str | None) -> str | None:
    if clock is None:
        return None
    if clock == "+2d":
        return "2024-01-03 08:00:00+00"
    return f"{day} {clock}:00+00"


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE calls ({call_schema_sql()})")
    for n, (category, flags, priority, disp, arr, clr, day, hour, district) in enumerate(CALLS):
        con.execute(
            "INSERT INTO calls (call_id, source, category, flags, priority, dispatched_at, "
            "arrived_at, cleared_at, local_date, local_hour, district) "
            "VALUES (?, 'fixture', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [f"fixture:{n}", category, flags, priority, _ts(day, disp), _ts(day, arr),
             _ts(day, clr), day, hour, district])
    return con


def test_tiers_calls_and_unit_hours(con: duckdb.DuckDBPyConnection) -> None:
    result = run_scenario(con, load_policy())
    assert (result.calls, result.classified_calls) == (8, 7)
    tiers = {t.tier: t for t in result.tiers}
    crisis = tiers["civilian_crisis"]
    assert (crisis.calls, crisis.usable_times, crisis.imputed) == (2, 1, 1)
    assert (crisis.unit_hours_measured, crisis.unit_hours_estimated) == (1.0, 2.0)
    reporting = tiers["alternative_reporting"]
    assert (reporting.calls, reporting.not_attended, reporting.unit_hours_estimated) == (1, 1, 0)
    assert tiers["police_emergency"].unit_hours_estimated == 2.5
    police = tiers["police"]
    assert (police.calls, police.unit_hours_measured, police.unit_hours_estimated) == (2, 0.5, 1.0)
    assert tiers["officer_activity"].unit_hours_estimated == 0.25
    assert sum(t.calls for t in result.tiers) == 7
    assert result.diverted_calls == 3
    assert result.diverted_share == pytest.approx(3 / 7)
    assert result.unit_hours_estimated == pytest.approx(5.75)
    assert result.diverted_unit_hours == pytest.approx(2.0)
    assert result.usable_time_share == pytest.approx(4 / 7)


def test_calls_by_rule(con: duckdb.DuckDBPyConnection) -> None:
    result = run_scenario(con, load_policy())
    rules = {r.rule: r for r in result.rules}
    assert rules["person_in_crisis"].calls == 2
    assert rules["person_in_crisis"].unit_hours_estimated == 2.0
    assert rules["past_property_crime"].calls == 1
    assert rules["violence_or_weapon_in_progress"].calls == 1
    assert rules["officer_status"].calls == 1
    assert (rules["(default)"].calls, rules["(default)"].tier) == (2, "police")
    assert sum(r.calls for r in result.rules) == 7
    assert [r.rule for r in result.rules][-1] == "(default)"


def test_comparison_with_a_baseline_policy(con: duckdb.DuckDBPyConnection) -> None:
    everything_to_police = policy_from_data({
        "name": "status-quo", "default_tier": "police", "rules": [
            {"id": "officer_status", "tier": "officer_activity", "categories": ["officer_status"],
             "rationale": "officers' own work"}]}, "test")
    result = run_scenario(con, load_policy(), baseline=everything_to_police)
    moved = {(t.from_tier, t.to_tier): (t.calls, t.unit_hours_estimated)
             for t in result.transitions if t.from_tier != t.to_tier}
    assert moved == {("police", "civilian_crisis"): (2, 2.0),
                     ("police", "alternative_reporting"): (1, 0.0),
                     ("police", "police_emergency"): (1, 2.5)}
    kept = {(t.from_tier, t.calls) for t in result.transitions if t.from_tier == t.to_tier}
    assert kept == {("police", 2), ("officer_activity", 1)}
    assert result.baseline == "status-quo v1"


def test_by_area(con: duckdb.DuckDBPyConnection) -> None:
    result = run_scenario(con, load_policy(), by="area", area="district")
    rows = {r.key: r for r in result.breakdown}
    assert (rows["D1"].calls, rows["D1"].diverted_calls, rows["D1"].unit_hours_estimated,
            rows["D1"].diverted_unit_hours) == (4, 2, 3.0, 2.0)
    assert (rows["D2"].calls, rows["D2"].diverted_calls, rows["D2"].unit_hours_estimated) == (
        3, 1, 2.75)
    assert result.breakdown_missing == 0


def test_by_hour_of_week(con: duckdb.DuckDBPyConnection) -> None:
    result = run_scenario(con, load_policy(), by="hour_of_week")
    rows = {int(r.key): r for r in result.breakdown}
    assert sorted(rows) == [8, 10, 12, 27, 167]
    assert (rows[10].calls, rows[10].diverted_share) == (2, 1.0)
    assert rows[167].unit_hours_estimated == 0.25
    assert result.breakdown_missing == 1
    assert hour_of_week_label(167) == "Sun 23"
    assert hour_of_week_label(27) == "Tue 03"


def test_no_classified_calls_is_a_clear_error(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("UPDATE calls SET category = NULL, flags = NULL")
    with pytest.raises(NoClassifiedCallsError, match="none of the 8 calls is classified"):
        run_scenario(con, load_policy())
    con.execute("DELETE FROM calls")
    with pytest.raises(NoClassifiedCallsError, match="there are no calls"):
        run_scenario(con, load_policy())
