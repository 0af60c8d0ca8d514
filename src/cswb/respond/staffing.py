"""Staffing of an alternative team for a response-time target, and what it costs.

1. **Arrivals**: the calls a policy sends to the team's tier, counted by hour of the week and
   divided by the number of times that hour occurs in the span observed (the mean calls per
   hour of week over the weeks observed).
2. **Can the target be met at all?** With unlimited teams a call is reached after its travel
   alone; when ``P(travel <= target) < share`` no staffing meets the target and
   :class:`~cswb.errors.TargetUnreachableError` says so, with the best share reachable and the
   shortest target that could be met.
3. **Erlang C**, hour by hour, gives the first estimate of the teams needed.
4. **Simulation** (:mod:`cswb.respond.simulate`) with the fitted, non-exponential times and the
   hour-of-week arrivals is the answer: starting from the Erlang-C staffing, a team is added in
   every hour whose calls are reached in time less often than the target (and where calls did
   wait: extra teams cannot shorten travel), then teams are removed one hour at a time where the
   target still holds. The target is applied to the calls arriving in each hour of the week.
5. **Weekly target** (``scope="week"``): from the per-hour answer, teams are given up one at a
   time in the order Erlang C says loses fewest calls reached in time, as many as the simulated
   share over the whole week allows (the lower end of its 95 % interval must meet the target;
   binary search); Erlang C's own weekly answer is found the same way with its predictions.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import duckdb
import numpy as np

from cswb.errors import NoClassifiedCallsError, TargetUnreachableError
from cswb.respond.erlang import share_reached, teams_needed
from cswb.respond.policy import Policy, with_tier_sql
from cswb.respond.service_times import ServiceTimes, travel_bound_minutes
from cswb.respond.simulate import HOURS_PER_WEEK, SimulationResult, SimulationSettings, simulate
from cswb.respond.tiers import Tier
from cswb.storage.sql import lit, run

WEEKS_PER_YEAR = 365.25 / 7
MAX_ADJUST_ROUNDS = 12


@dataclass(frozen=True)
class Arrivals:
    """Mean calls per hour of the week for one tier."""

    tier: str
    rates: np.ndarray
    calls: int
    first_date: date | None
    last_date: date | None
    undated: int = 0

    @property
    def per_week(self) -> float:
        return float(self.rates.sum())

    @property
    def weeks_observed(self) -> float:
        if self.first_date is None or self.last_date is None:
            return 0.0
        return ((self.last_date - self.first_date).days + 1) / 7

    def scaled(self, per_week: float) -> Arrivals:
        """The same hour-of-week shape with ``per_week`` calls a week in all."""
        factor = per_week / self.per_week if self.per_week else 0.0
        return Arrivals(self.tier, self.rates * factor, self.calls, self.first_date,
                        self.last_date, self.undated)


def _days_per_weekday(first: date, last: date) -> np.ndarray:
    days = np.zeros(7)
    current = first
    while current <= last:
        days[current.weekday()] += 1
        current += timedelta(days=1)
    return days


def _hourly(con: duckdb.DuckDBPyConnection, relation: str, where: str, label: str
            ) -> Arrivals:
    first, last = run(con, f"SELECT min(local_date), max(local_date) FROM {relation}")[0]
    counts = run(con, f"""
        SELECT (isodow(local_date) - 1) * 24 + local_hour AS how, count(*)
        FROM {relation} WHERE {where} GROUP BY ALL""")
    per_hour = np.zeros(HOURS_PER_WEEK)
    undated = 0
    for how, n in counts:
        if how is None:
            undated += n
        else:
            per_hour[int(how)] = n
    occurrences = (np.repeat(_days_per_weekday(first, last), 24) if first is not None
                   else np.zeros(HOURS_PER_WEEK))
    rates = np.where(occurrences > 0, per_hour / np.maximum(occurrences, 1), 0.0)
    return Arrivals(label, rates, int(per_hour.sum()) + undated, first, last, undated)


def arrivals_by_hour_of_week(con: duckdb.DuckDBPyConnection, policy: Policy, tier: Tier,
                             relation: str = "calls") -> Arrivals:
    """Mean calls per hour of week that ``policy`` gives to ``tier`` in ``relation``."""
    classified = run(con, f"SELECT count(category) FROM {relation}")[0][0]
    if not classified:
        raise NoClassifiedCallsError(
            "no call is classified (category is empty), so no arrivals can be counted for "
            f"{tier.value}: classify the calls first (`cswb classify apply`), or give "
            "--arrivals-per-week")
    where = f"category IS NOT NULL AND tier = {lit(tier.value)}"
    return _hourly(con, with_tier_sql(policy, relation), where, tier.value)


def arrivals_shaped_like_all_calls(con: duckdb.DuckDBPyConnection, tier: Tier, per_week: float,
                                   relation: str = "calls") -> Arrivals:
    """``per_week`` calls for ``tier`` spread over the week like all stored calls (flat when
    there are none): the stand-in when the store's calls are not classified yet."""
    shape = _hourly(con, relation, "TRUE", tier.value)
    if shape.per_week <= 0:
        shape = Arrivals(tier.value, np.ones(HOURS_PER_WEEK), 0, None, None)
    return shape.scaled(per_week)


@dataclass(frozen=True)
class StaffingTarget:
    """What the team must achieve and what an hour of it costs."""

    minutes: float = 20.0
    share: float = 0.9
    hourly_cost: float = 95.0
    max_teams: int = 20
    scope: Literal["hour", "week"] = "hour"
    """``hour``: the share holds for the calls of every hour of the week; ``week``: over all."""


@dataclass
class StaffingPlan:
    """Teams per hour of the week by Erlang C and by simulation, and their cost."""

    tier: str
    target: StaffingTarget
    arrivals: Arrivals
    times: ServiceTimes
    sim: SimulationSettings
    erlang_teams: np.ndarray
    sim_teams: np.ndarray
    erlang_predicted_share: float
    erlang_simulated: SimulationResult
    plan_simulated: SimulationResult
    travel_alone_share: float
    hours_limited_by_travel: list[int] = field(default_factory=list)
    hours_short_at_max: list[int] = field(default_factory=list)

    def team_hours(self, teams: np.ndarray) -> int:
        return int(teams.sum())

    def weekly_cost(self, teams: np.ndarray) -> float:
        return self.team_hours(teams) * self.target.hourly_cost

    def to_dict(self) -> dict[str, Any]:
        def staffing(teams: np.ndarray, result: SimulationResult) -> dict[str, Any]:
            low, high = result.interval
            return {"teams_by_hour_of_week": [int(t) for t in teams],
                    "team_hours_per_week": self.team_hours(teams),
                    "weekly_cost": round(self.weekly_cost(teams), 2),
                    "annual_cost": round(self.weekly_cost(teams) * WEEKS_PER_YEAR, 2),
                    "simulated_share_within_target": round(result.share, 4),
                    "simulated_share_interval_95": [round(low, 4), round(high, 4)],
                    "simulated_mean_wait_minutes": round(result.mean_wait_minutes, 2),
                    "simulated_p90_reach_minutes": round(result.p90_reach_minutes, 2)}

        return {
            "tier": self.tier,
            "target": {"minutes": self.target.minutes, "share": self.target.share,
                       "hourly_cost": self.target.hourly_cost,
                       "max_teams": self.target.max_teams, "scope": self.target.scope,
                       "reached": "dispatch request to arrival: wait for a free team + travel"},
            "arrivals": {"per_week": round(self.arrivals.per_week, 2),
                         "calls_counted": self.arrivals.calls,
                         "first_date": str(self.arrivals.first_date),
                         "last_date": str(self.arrivals.last_date),
                         "weeks_observed": round(self.arrivals.weeks_observed, 1),
                         "by_hour_of_week": [round(float(r), 4) for r in self.arrivals.rates]},
            "service_times": {"travel_mean": round(self.times.travel.mean(), 2),
                              "travel_p90": round(self.times.travel.quantile(0.9), 2),
                              "on_scene_mean": round(self.times.on_scene.mean(), 2),
                              "busy_mean": round(self.times.busy, 2),
                              "provenance": self.times.provenance},
            "travel_alone_share_within_target": round(self.travel_alone_share, 4),
            "erlang_c": {**staffing(self.erlang_teams, self.erlang_simulated),
                         "predicted_share_within_target": round(self.erlang_predicted_share, 4)},
            "simulation": staffing(self.sim_teams, self.plan_simulated),
            "gap_team_hours_per_week": self.team_hours(self.sim_teams)
            - self.team_hours(self.erlang_teams),
            "hours_limited_by_travel": self.hours_limited_by_travel,
            "hours_short_at_max_teams": self.hours_short_at_max,
            "simulation_settings": {"weeks": self.sim.weeks, "replications": self.sim.replications,
                                    "seed": self.sim.seed, "warm_up_weeks": 1},
        }


def check_reachable(times: ServiceTimes, target: StaffingTarget) -> float:
    """Share reachable with unlimited teams; raise when it is below the target share."""
    reachable = times.travel.cdf(target.minutes)
    if reachable < target.share:
        raise TargetUnreachableError(
            f"the target cannot be met at any staffing: travel alone takes longer than "
            f"{target.minutes:g} minutes for {1 - reachable:.0%} of calls (travel P"
            f"{round(target.share * 100)} is {times.travel.quantile(target.share):.0f} min), "
            f"so even with a free team for every call only {reachable:.1%} would be reached "
            f"within {target.minutes:g} minutes, short of {target.share:.0%}. The shortest "
            f"target met for {target.share:.0%} of calls is "
            f"{travel_bound_minutes(times.travel, target.share):g} minutes; or reach "
            f"{reachable:.0%} within {target.minutes:g}; or shorten travel (more bases)")
    return reachable


def _erlang_share(teams: int, rate: float, times: ServiceTimes, target: StaffingTarget,
                  grid: np.ndarray) -> float:
    """Erlang C's share reached in time in an hour with ``rate`` calls and ``teams`` teams."""
    if teams <= 0:
        return 0.0 if rate > 0 else 1.0
    return share_reached(teams, rate / 60.0, times.busy, target.minutes, grid)


def erlang_staffing(rates: np.ndarray, times: ServiceTimes, target: StaffingTarget
                    ) -> tuple[np.ndarray, float]:
    """Teams per hour of week by Erlang C, and the share Erlang C predicts for them."""
    grid = times.travel.grid()
    teams = np.zeros(HOURS_PER_WEEK, dtype=int)
    for hour, rate in enumerate(rates):
        needed = teams_needed(float(rate) / 60.0, times.busy, target.minutes, target.share, grid,
                              max_teams=target.max_teams)
        teams[hour] = target.max_teams if needed is None else needed
    if target.scope == "week":
        teams = _erlang_weekly(rates, teams, times, target, grid)
    return teams, _erlang_overall(rates, teams, times, target, grid)


def _erlang_overall(rates: np.ndarray, teams: np.ndarray, times: ServiceTimes,
                    target: StaffingTarget, grid: np.ndarray) -> float:
    shares = np.array([_erlang_share(int(c), float(r), times, target, grid)
                       for c, r in zip(teams, rates, strict=True)])
    return float((shares * rates).sum() / rates.sum()) if rates.sum() else 1.0


def removal_order(rates: np.ndarray, teams: np.ndarray, times: ServiceTimes,
                  target: StaffingTarget, grid: np.ndarray) -> list[int]:
    """Hours in the order their teams would be given up for a weekly target: each step removes
    the team whose loss of calls reached in time is smallest by Erlang C (never below one team
    in an hour with calls)."""
    floor = (rates > 0).astype(int)
    current = teams.copy()

    def loss(hour: int) -> float:
        c, rate = int(current[hour]), float(rates[hour])
        return rate * (_erlang_share(c, rate, times, target, grid)
                       - _erlang_share(c - 1, rate, times, target, grid))

    heap = [(loss(h), h) for h in range(HOURS_PER_WEEK) if current[h] > floor[h]]
    heapq.heapify(heap)
    order = []
    while heap:
        _, hour = heapq.heappop(heap)
        order.append(hour)
        current[hour] -= 1
        if current[hour] > floor[hour]:
            heapq.heappush(heap, (loss(hour), hour))
    return order


def _without(teams: np.ndarray, order: list[int], count: int) -> np.ndarray:
    removed = np.bincount(np.array(order[:count], dtype=int), minlength=HOURS_PER_WEEK)
    return teams - removed


def _erlang_weekly(rates: np.ndarray, teams: np.ndarray, times: ServiceTimes,
                   target: StaffingTarget, grid: np.ndarray) -> np.ndarray:
    order = removal_order(rates, teams, times, target, grid)
    low, high = 0, len(order)
    while low < high:  # the most removals Erlang C says still meet the weekly share
        middle = (low + high + 1) // 2
        if _erlang_overall(rates, _without(teams, order, middle), times, target,
                           grid) >= target.share:
            low = middle
        else:
            high = middle - 1
    return _without(teams, order, low)


def _failing(result: SimulationResult, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Hours short of the target where calls waited, and hours short only through travel."""
    by_hour = result.share_by_hour()
    short = np.nan_to_num(by_hour, nan=1.0) < share
    return short & (result.waited_by_hour > 0), short & (result.waited_by_hour == 0)


def _raise_until_met(rates: np.ndarray, teams: np.ndarray, times: ServiceTimes,
                     target: StaffingTarget, sim: SimulationSettings
                     ) -> tuple[np.ndarray, SimulationResult]:
    teams = teams.copy()
    for _ in range(MAX_ADJUST_ROUNDS):
        result = simulate(rates, teams, times, target.minutes, sim)
        short, _ = _failing(result, target.share)
        addable = short & (teams < target.max_teams)
        if not addable.any():
            return teams, result
        teams = teams + addable.astype(int)
    return teams, simulate(rates, teams, times, target.minutes, sim)


def _lower_where_possible(rates: np.ndarray, teams: np.ndarray, times: ServiceTimes,
                          target: StaffingTarget, sim: SimulationSettings, *,
                          result: SimulationResult) -> tuple[np.ndarray, SimulationResult]:
    floor = (rates > 0).astype(int)
    for _ in range(MAX_ADJUST_ROUNDS):
        trial = np.maximum(teams - 1, floor)
        if (trial == teams).all():
            break
        trial_result = simulate(rates, trial, times, target.minutes, sim)
        short, _ = _failing(trial_result, target.share)
        lowered = (trial < teams) & ~short
        if not lowered.any():
            break
        candidate = np.where(lowered, trial, teams)
        candidate, candidate_result = _raise_until_met(rates, candidate, times, target, sim)
        if candidate.sum() >= teams.sum():
            break
        teams, result = candidate, candidate_result
    return teams, result


def _weekly(rates: np.ndarray, teams: np.ndarray, times: ServiceTimes, target: StaffingTarget,
            sim: SimulationSettings, *, result: SimulationResult
            ) -> tuple[np.ndarray, SimulationResult]:
    """From a staffing meeting the target in every hour, give up teams in Erlang C's order as
    long as the simulated share over the week still meets it, at the lower end of its 95 %
    interval (binary search)."""
    order = removal_order(rates, teams, times, target, times.travel.grid())
    low, high, best = 0, len(order), result
    while low < high:
        middle = (low + high + 1) // 2
        trial = simulate(rates, _without(teams, order, middle), times, target.minutes, sim)
        if trial.interval[0] >= target.share:
            low, best = middle, trial
        else:
            high = middle - 1
    return _without(teams, order, low), best


def plan_staffing(arrivals: Arrivals, times: ServiceTimes, target: StaffingTarget,
                  sim: SimulationSettings | None = None) -> StaffingPlan:
    """Minimal teams per hour of week meeting the target in simulation, beside Erlang C's."""
    sim = sim or SimulationSettings()
    reachable = check_reachable(times, target)
    rates = arrivals.rates
    if rates.sum() <= 0:
        raise NoClassifiedCallsError(f"no call goes to {arrivals.tier}: nothing to staff")
    erlang, predicted = erlang_staffing(rates, times, target)
    erlang_result = simulate(rates, erlang, times, target.minutes, sim)
    hourly = StaffingTarget(target.minutes, target.share, target.hourly_cost, target.max_teams)
    start = erlang if target.scope == "hour" else erlang_staffing(rates, times, hourly)[0]
    teams, result = _raise_until_met(rates, start, times, hourly, sim)
    teams, result = _lower_where_possible(rates, teams, times, hourly, sim, result=result)
    short, by_travel = _failing(result, target.share)
    if target.scope == "week":
        teams, result = _weekly(rates, teams, times, target, sim, result=result)
        short = np.zeros(HOURS_PER_WEEK, dtype=bool)
    return StaffingPlan(
        tier=arrivals.tier, target=target, arrivals=arrivals, times=times, sim=sim,
        erlang_teams=erlang, sim_teams=teams, erlang_predicted_share=predicted,
        erlang_simulated=erlang_result, plan_simulated=result, travel_alone_share=reachable,
        hours_limited_by_travel=[int(h) for h in np.flatnonzero(by_travel)],
        hours_short_at_max=[int(h) for h in np.flatnonzero(short)])
