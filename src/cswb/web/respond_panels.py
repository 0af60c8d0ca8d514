"""Response panels: what the local response policy would move, and the team it would need.

Both call the response package (:mod:`cswb.respond`) on the filtered calls: the scenario of the
configured policy (``settings.respond_policy``, else the packaged default) on the filtered
calls, and the staffing of its civilian crisis team for the whole city (a team serves every
area at every hour; the plan is simulated once per store content) for the shortest round
response-time target that travel allows.
Calls per tier pass the same suppression as every other count; unit hours of a suppressed tier
are suppressed with it. Team numbers describe shifts, not people, and are shown as computed.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb

from cswb.analytics.query import AnalyticsError, DuckDBEngine
from cswb.errors import NoClassifiedCallsError, TargetUnreachableError
from cswb.respond.policy import Policy, load_policy
from cswb.respond.scenario import run_scenario
from cswb.respond.service_times import ServiceTimes, load_service_times, travel_bound_minutes
from cswb.respond.staffing import (
    StaffingPlan,
    StaffingTarget,
    arrivals_by_hour_of_week,
    plan_staffing,
)
from cswb.respond.tiers import DIVERTED_TIERS, Tier
from cswb.storage.sql import ident, run
from cswb.web import figures
from cswb.web.cache import kept, store_key
from cswb.web.filters import label
from cswb.web.panel import SUPPRESSED, Column, Panel, chartable, published
from cswb.web.panels import DAYS, Context
from cswb.web.suppression import suppress_one_way

TEAM_TIER = Tier.CIVILIAN_CRISIS
TARGET_SHARE = 0.9


def _relation(ctx: Context) -> str:
    return f"(SELECT * FROM calls{ctx.calls.where(ctx.engine.dialect)})"


def _con(ctx: Context) -> duckdb.DuckDBPyConnection:
    if not isinstance(ctx.engine, DuckDBEngine):
        raise AnalyticsError("response scenarios run on the embedded DuckDB engine only")
    return ctx.engine.con


def policy_of(path: Path | None) -> Policy:
    """The configured response policy, else the one shipped with cswb."""
    return load_policy(path)


def scenario(ctx: Context) -> Panel:
    """Calls and unit hours the policy gives each responder tier."""
    columns = (Column("tier", "Responder tier", "text"), Column("calls", "Calls"),
               Column("share_percent", "Share of classified", "share"),
               Column("unit_hours", "Unit hours (estimated)", "rate"))
    title = "Who would respond: the response policy's tiers"
    policy = policy_of(ctx.policy_path)
    try:
        con = _con(ctx)
        result = kept(("scenario", store_key(con), ctx.filter, ctx.policy_path),
                      lambda: run_scenario(con, policy, _relation(ctx)))
    except NoClassifiedCallsError as exc:
        return Panel("scenario", title, str(exc), columns, [], notes=[f"{exc}."])
    counts = [t.calls for t in result.tiers]
    shown = published(counts, suppress_one_way(counts, ctx.threshold).hidden)
    rows = [(label(t.tier), s, SUPPRESSED if s == SUPPRESSED else t.share,
             SUPPRESSED if s == SUPPRESSED else t.unit_hours_estimated)
            for t, s in zip(result.tiers, shown, strict=True)]
    diverted = ", ".join(label(t.value).lower() for t in DIVERTED_TIERS)
    summary = (f"Under policy {result.policy} v{result.policy_version}, "
               f"{100 * result.diverted_share:.1f}% of classified calls and "
               f"{result.diverted_unit_hours:,.0f} of {result.unit_hours_estimated:,.0f} unit "
               "hours would go to a response other than police.")
    return Panel("scenario", title, summary, columns, rows,
                 figure=figures.bars([r[0] for r in rows], chartable([r[1] for r in rows])),
                 notes=[f"Diverted tiers: {diverted}. Unit hours are on-scene time, measured or "
                        f"imputed ({100 * result.usable_time_share:.0f}% of calls have usable "
                        "times). Policy: "
                        + (str(ctx.policy_path) if ctx.policy_path else "cswb's default")],
                 suppressed=sum(1 for s in shown if s == SUPPRESSED))


def _stored_calls(con: duckdb.DuckDBPyConnection) -> str:
    """The store's calls, whatever temporary view a filter put in front of them."""
    return f"{ident(run(con, 'SELECT current_database()')[0][0])}.main.calls"


def _plan(ctx: Context, minutes: float, times: ServiceTimes) -> StaffingPlan:
    """The staffing plan for the whole city, computed once per store content and settings."""
    con = _con(ctx)

    def compute() -> StaffingPlan:
        arrivals = arrivals_by_hour_of_week(con, policy_of(ctx.policy_path), TEAM_TIER,
                                            _stored_calls(con))
        return plan_staffing(arrivals, times, StaffingTarget(minutes=minutes,
                                                             share=TARGET_SHARE))

    return kept(("staffing", store_key(con), ctx.policy_path, ctx.service_times_path, minutes),
                compute)


def staffing(ctx: Context) -> Panel:
    """Teams of the civilian crisis tier per hour of the week for a response-time target.

    A team serves the whole city at all hours, so the plan is for all stored calls: the page's
    filters do not apply to it (it says so), and it is computed once per store content.
    """
    columns = (Column("day", "Day", "text"), Column("hour", "Hour", "text"),
               Column("teams", "Teams on duty"))
    title = f"Staffing the {label(TEAM_TIER.value).lower()} team"
    times = load_service_times(ctx.service_times_path)
    minutes = max(20.0, 5 * math.ceil(travel_bound_minutes(times.travel, TARGET_SHARE) / 5))
    try:
        plan = _plan(ctx, minutes, times)
    except (NoClassifiedCallsError, TargetUnreachableError) as exc:
        return Panel("staffing", title, str(exc), columns, [], notes=[f"{exc}."])
    teams = [int(t) for t in plan.sim_teams]
    rows = [(DAYS[h // 24], h % 24, teams[h]) for h in range(len(teams))]
    grid = [teams[d * 24:(d + 1) * 24] for d in range(7)]
    cost = plan.weekly_cost(plan.sim_teams)
    summary = (f"To reach {TARGET_SHARE:.0%} of its calls within {minutes:g} minutes, the team "
               f"needs {plan.team_hours(plan.sim_teams):,} team-hours a week "
               f"(about ${cost:,.0f} a week at ${plan.target.hourly_cost:g} an hour); "
               f"Erlang C alone says {plan.team_hours(plan.erlang_teams):,}.")
    return Panel("staffing", title, summary, columns, rows,
                 figure=figures.heatmap(grid, list(range(24)), DAYS, unit="teams"),
                 notes=["For the whole city: the page's filters do not apply to staffing.",
                        f"{plan.arrivals.per_week:.1f} calls a week for the team, by hour of "
                        f"the week, from {plan.arrivals.first_date} to "
                        f"{plan.arrivals.last_date}. Simulated "
                        f"share reached in time: {100 * plan.plan_simulated.share:.1f}%. "
                        f"{minutes:g} minutes is the shortest round target travel allows "
                        "(travel and on-scene times: "
                        f"{times.provenance.get('publisher', 'as configured')})."])
