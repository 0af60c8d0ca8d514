"""Staffing: Erlang C against textbook values, the simulation against Erlang C in the M/M/c
case, the impossible-target check, the fitted times, and the plan search."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest

from cswb.domain.calls import call_schema_sql
from cswb.errors import ConfigError, SourceFileError, TargetUnreachableError
from cswb.respond.durations import Duration
from cswb.respond.erlang import erlang_c, mean_wait, share_reached, teams_needed
from cswb.respond.policy import load_policy
from cswb.respond.service_times import (
    ServiceTimes,
    fit_service_times,
    load_service_times,
    service_times_from_dict,
)
from cswb.respond.simulate import HOURS_PER_WEEK, SimulationSettings, simulate
from cswb.respond.staffing import (
    Arrivals,
    StaffingTarget,
    arrivals_by_hour_of_week,
    check_reachable,
    plan_staffing,
)
from cswb.respond.tiers import Tier

# --- Erlang C --------------------------------------------------------------------------------


def _erlang_c_by_sum(servers: int, load: float) -> float:
    """The textbook closed form, summed directly (an independent check of the recursion)."""
    top = load**servers / math.factorial(servers) * servers / (servers - load)
    return top / (sum(load**k / math.factorial(k) for k in range(servers)) + top)


@pytest.mark.parametrize(("servers", "load", "expected"), [
    (1, 0.5, 0.5),          # M/M/1: P(wait) = rho
    (2, 1.0, 1 / 3),        # M/M/2 at rho = 0.5
    (3, 2.0, 4 / 9),        # M/M/3 at rho = 2/3
    (10, 8.0, _erlang_c_by_sum(10, 8.0)),
    (50, 45.0, _erlang_c_by_sum(50, 45.0)),
])
def test_erlang_c_textbook_values(servers: int, load: float, expected: float) -> None:
    assert erlang_c(servers, load) == pytest.approx(expected, rel=1e-9)


def test_erlang_c_edges_and_mean_wait() -> None:
    assert erlang_c(2, 2.0) == 1.0 and erlang_c(3, 0.0) == 0.0
    assert mean_wait(1, 0.5, 1.0) == pytest.approx(1.0)        # rho / (mu - lambda)
    assert mean_wait(2, 1.0, 1.0) == pytest.approx(1 / 3)      # C / (c mu - lambda)
    assert mean_wait(2, 2.0, 1.0) == math.inf


def test_share_reached_without_travel_is_the_wait_distribution() -> None:
    grid = np.zeros(100)
    expected = 1 - (4 / 9) * math.exp(-(3 / 60 - 2 / 60) * 15)
    assert share_reached(3, 2 / 60, 60.0, 15.0, grid) == pytest.approx(expected)
    # 4 teams: C(4, 2) = 4/23, P(W <= 15) = 1 - 4/23 exp(-0.5) = 0.894, short of 0.9
    assert share_reached(4, 2 / 60, 60.0, 15.0, grid) == pytest.approx(
        1 - 4 / 23 * math.exp(-0.5))
    assert teams_needed(2 / 60, 60.0, 15.0, 0.9, grid, max_teams=10) == 5
    assert teams_needed(2 / 60, 60.0, 15.0, 0.9, grid, max_teams=4) is None


# --- simulation against Erlang C (M/M/c: exponential times, stationary arrivals) ---------


def test_simulation_matches_erlang_c_in_the_mm_c_case() -> None:
    times = ServiceTimes(Duration.constant(0.0), Duration.exponential(60.0), {})
    rates = np.full(HOURS_PER_WEEK, 2.0)                      # 2 calls an hour, 1 h each
    teams = np.full(HOURS_PER_WEEK, 3)
    result = simulate(rates, teams, times, 15.0, SimulationSettings(weeks=12, replications=12))
    expected = share_reached(3, 2 / 60, 60.0, 15.0, np.zeros(1))
    low, high = result.interval
    half = (high - low) / 2
    assert abs(result.share - expected) <= 2 * half + 0.005, (result.share, expected, half)
    waited = result.waited_by_hour.sum() / result.calls_by_hour.sum()
    assert waited == pytest.approx(4 / 9, abs=0.02)
    assert result.mean_wait_minutes == pytest.approx(mean_wait(3, 2 / 60, 1 / 60), rel=0.1)


def test_simulation_is_seeded_and_staffing_changes_only_the_queue() -> None:
    times = load_service_times()
    rates = np.full(HOURS_PER_WEEK, 1.0)
    settings = SimulationSettings(weeks=4, replications=3, seed=5)
    one = simulate(rates, np.full(HOURS_PER_WEEK, 2), times, 45.0, settings)
    again = simulate(rates, np.full(HOURS_PER_WEEK, 2), times, 45.0, settings)
    more = simulate(rates, np.full(HOURS_PER_WEEK, 4), times, 45.0, settings)
    assert np.array_equal(one.share_by_replication, again.share_by_replication)
    assert np.array_equal(one.calls_by_hour, more.calls_by_hour)   # same calls
    assert more.mean_wait_minutes < one.mean_wait_minutes


def test_shift_with_no_team_waits_for_the_next_shift() -> None:
    times = ServiceTimes(Duration.constant(0.0), Duration.constant(10.0), {})
    rates = np.zeros(HOURS_PER_WEEK)
    rates[0] = 3.0
    teams = np.zeros(HOURS_PER_WEEK, dtype=int)
    teams[1] = 1                                                 # Monday 01-02 only
    result = simulate(rates, teams, times, 60.0, SimulationSettings(weeks=2, replications=2))
    # calls of Monday 00 wait until 01:00: between 0 and 60 minutes, mean about 30 + queueing
    assert result.waited_by_hour[0] == result.calls_by_hour[0] > 0
    assert 20 < result.mean_wait_minutes < 60


# --- the impossible target and the packaged fit ---------------------------------------------


def test_twenty_minutes_for_ninety_percent_is_impossible_with_lane_county_travel() -> None:
    times = load_service_times()
    with pytest.raises(TargetUnreachableError) as caught:
        check_reachable(times, StaffingTarget(minutes=20, share=0.9))
    message = str(caught.value)
    assert "cannot be met at any staffing" in message
    assert "travel P90 is 31 min" in message
    assert "shortest target met for 90% of calls is 31" in message
    assert check_reachable(times, StaffingTarget(minutes=45, share=0.9)) > 0.9


def test_plan_staffing_refuses_an_impossible_target_before_simulating() -> None:
    arrivals = Arrivals("civilian_crisis", np.full(HOURS_PER_WEEK, 0.5), 84, None, None)
    with pytest.raises(TargetUnreachableError):
        plan_staffing(arrivals, load_service_times(), StaffingTarget(minutes=20, share=0.9))


def test_packaged_times_describe_lane_county() -> None:
    times = load_service_times()
    assert times.travel.quantile(0.9) == pytest.approx(31.0, abs=0.5)
    assert 10 < times.travel.mean() < 25 and 20 < times.on_scene.mean() < 40
    assert times.provenance["file"] == "dispatches.csv"


def test_bad_service_times_file(tmp_path: Path) -> None:
    bad = tmp_path / "t.json"
    bad.write_text('{"travel": {"kind": "gamma"}, "on_scene": {"kind": "constant", "value": 1}}')
    with pytest.raises(ConfigError, match="unknown duration kind 'gamma'"):
        load_service_times(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_service_times(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="missing"):
        service_times_from_dict({"travel": {"kind": "lognormal", "mu": 1}}, "x")


def test_quantile_duration_cdf_inverts_its_quantiles() -> None:
    d = Duration.from_quantiles([0, 0, 5, 10, 10, 30])
    for p in (0.3, 0.5, 0.7, 0.9):
        assert d.cdf(d.quantile(p)) >= p - 1e-9
    assert d.cdf(-1) == 0 and d.cdf(30) == 1
    grid = np.linspace(-2, 35, 75)
    for kind in (d, Duration.exponential(7.0), Duration.constant(3.0), Duration.lognormal(2, 1)):
        assert kind.cdf_array(grid) == pytest.approx([kind.cdf(float(x)) for x in grid])
    draws = d.sample(np.random.default_rng(1), 20_000)
    assert draws.mean() == pytest.approx(d.mean(), rel=0.03)


@pytest.mark.shared_data
def test_fit_on_the_real_dispatch_file_matches_the_packaged_fit(shared_data: Path) -> None:
    path = shared_data / "crisis_teams" / "lane_county_mcslc" / "dispatches.csv"
    fitted = fit_service_times(path)
    assert fitted["provenance"]["rows"] == 4682
    assert fitted["travel"]["summary"]["p90"] == 31.0
    assert fitted["travel"]["summary"]["n"] > 4000
    packaged = json.loads((Path(__file__).parents[1] / "src/cswb/respond/data/"
                           "crisis_team_times.json").read_text(encoding="utf-8"))
    assert packaged["travel"]["quantiles"] == fitted["travel"]["quantiles"], (
        "the packaged fit is stale: rerun `cswb respond fit-times ... --output "
        "src/cswb/respond/data/crisis_team_times.json`")
    assert packaged["provenance"]["sha256"] == fitted["provenance"]["sha256"]


# --- arrivals and the plan --------------------------------------------------------------------


def test_arrivals_are_mean_calls_per_hour_of_week() -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE calls ({call_schema_sql()})")
    rows = [  # two Mondays in a 14-day span; 3 crisis calls Monday 10:00, 1 Tuesday 03:00
        ("2024-01-01", 10), ("2024-01-01", 10), ("2024-01-08", 10), ("2024-01-02", 3),
    ]
    for n, (day, hour) in enumerate(rows):
        con.execute("INSERT INTO calls (call_id, source, category, flags, priority, local_date, "
                    "local_hour) VALUES (?, 's', 'behavioral_health', ['mental_health'], 3, ?, ?)",
                    [f"s:{n}", day, hour])
    con.execute("INSERT INTO calls (call_id, source, category, local_date, local_hour) "
                "VALUES ('s:x', 's', 'traffic', '2024-01-14', 9)")
    arrivals = arrivals_by_hour_of_week(con, load_policy(), Tier.CIVILIAN_CRISIS)
    assert (arrivals.first_date, arrivals.last_date) == (date(2024, 1, 1), date(2024, 1, 14))
    assert arrivals.rates[10] == pytest.approx(1.5)            # 3 calls / 2 Mondays
    assert arrivals.rates[24 + 3] == pytest.approx(0.5)        # 1 call / 2 Tuesdays
    assert arrivals.per_week == pytest.approx(2.0) and arrivals.weeks_observed == 2.0
    assert arrivals.scaled(10).per_week == pytest.approx(10)


def test_plan_meets_the_target_in_every_hour_and_costs_its_team_hours() -> None:
    rates = np.where(np.arange(HOURS_PER_WEEK) % 24 >= 8, 1.5, 0.3)   # busier days
    arrivals = Arrivals("civilian_crisis", rates, 0, None, None)
    target = StaffingTarget(minutes=45, share=0.85, hourly_cost=100.0)
    plan = plan_staffing(arrivals, load_service_times(), target,
                         SimulationSettings(weeks=6, replications=6, seed=3))
    shares = plan.plan_simulated.share_by_hour()
    exempt = set(plan.hours_limited_by_travel)
    assert all(shares[h] >= 0.85 for h in range(HOURS_PER_WEEK) if h not in exempt)
    assert (plan.sim_teams >= 1).all() and (plan.erlang_teams >= 1).all()
    assert plan.sim_teams[12] >= plan.sim_teams[3]               # midday needs no fewer
    data = plan.to_dict()
    assert data["simulation"]["team_hours_per_week"] == int(plan.sim_teams.sum())
    assert data["simulation"]["weekly_cost"] == pytest.approx(100.0 * plan.sim_teams.sum())
    assert data["gap_team_hours_per_week"] == int(plan.sim_teams.sum() - plan.erlang_teams.sum())


def test_a_cap_on_teams_is_reported_when_it_is_not_enough() -> None:
    arrivals = Arrivals("civilian_crisis", np.full(HOURS_PER_WEEK, 4.0), 0, None, None)
    plan = plan_staffing(arrivals, load_service_times(),
                         StaffingTarget(minutes=45, share=0.9, max_teams=2),
                         SimulationSettings(weeks=2, replications=3))
    assert (plan.erlang_teams == 2).all() and (plan.sim_teams == 2).all()
    assert len(plan.hours_short_at_max) == HOURS_PER_WEEK


def test_fit_refuses_files_it_cannot_read(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("ID,When\n1,2025-01-01 10:00:00\n", encoding="utf-8")
    with pytest.raises(SourceFileError, match="no column 'Dispatch Date & Time'"):
        fit_service_times(other)
    with pytest.raises(SourceFileError, match="saved as CSV"):
        fit_service_times(_touch(tmp_path / "MCSLC.xlsx"))
    with pytest.raises(SourceFileError, match="does not exist"):
        fit_service_times(tmp_path / "missing.csv")


def _touch(path: Path) -> Path:
    path.write_bytes(b"PK")
    return path


def test_weekly_target_needs_no_more_team_hours_than_the_hourly_one() -> None:
    rates = np.where(np.arange(HOURS_PER_WEEK) % 24 >= 8, 1.5, 0.3)
    arrivals = Arrivals("civilian_crisis", rates, 0, None, None)
    settings = SimulationSettings(weeks=6, replications=6, seed=3)
    hourly = plan_staffing(arrivals, load_service_times(),
                           StaffingTarget(minutes=30, share=0.85), settings)
    weekly = plan_staffing(arrivals, load_service_times(),
                           StaffingTarget(minutes=30, share=0.85, scope="week"), settings)
    assert weekly.sim_teams.sum() < hourly.sim_teams.sum()
    assert weekly.erlang_teams.sum() < hourly.erlang_teams.sum()
    assert weekly.plan_simulated.interval[0] >= 0.85
    assert weekly.erlang_predicted_share >= 0.85
    assert (weekly.sim_teams >= 1).all()
    assert weekly.to_dict()["target"]["scope"] == "week"
