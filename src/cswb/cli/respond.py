"""``cswb respond``: the response policy, scenarios over stored calls, and team staffing."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from cswb.cli.common import console, settings_of, store_of
from cswb.errors import SourceFileError
from cswb.files import atomic_write
from cswb.respond.policy import Policy, load_policy
from cswb.respond.scenario import (
    Scenario,
    hour_of_week_label,
    run_scenario,
    with_truth,
)
from cswb.respond.service_times import fit_service_times, load_service_times
from cswb.respond.staffing import (
    WEEKS_PER_YEAR,
    Arrivals,
    SimulationSettings,
    StaffingPlan,
    StaffingTarget,
    arrivals_by_hour_of_week,
    arrivals_shaped_like_all_calls,
    plan_staffing,
)
from cswb.respond.tiers import DIVERTED_TIERS, Tier

respond_app = typer.Typer(help="Response policy, scenarios and staffing of alternative teams.",
                          no_args_is_help=True)

PolicyOption = Annotated[Path | None, typer.Option(
    "--policy", help="Response policy YAML (default: settings.respond_policy, else the policy "
    "shipped with cswb).", dir_okay=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
TruthOption = Annotated[Path | None, typer.Option(
    "--truth", help="Take category and flags from a synthetic city's truth.parquet (joined on "
    "call_id) instead of the store's classification.", dir_okay=False)]


class By(StrEnum):
    HOUR_OF_WEEK = "hour_of_week"
    AREA = "area"


class Scope(StrEnum):
    HOUR = "hour"
    WEEK = "week"


class Area(StrEnum):
    DISTRICT = "district"
    SECTOR = "sector"
    BEAT = "beat"
    NEIGHBOURHOOD = "neighbourhood"


def _policy(ctx: typer.Context, path: Path | None) -> Policy:
    return load_policy(path or settings_of(ctx).respond_policy)


def _relation(truth: Path | None) -> str:
    return "calls" if truth is None else with_truth("calls", truth)


@respond_app.command("policy")
def show_policy(ctx: typer.Context, policy: PolicyOption = None, json_out: JsonOption = False
                ) -> None:
    """Validate a response policy and list its rules in order."""
    loaded = _policy(ctx, policy)
    if json_out:
        typer.echo(json.dumps(loaded.model_dump(mode="json", by_alias=True, exclude_none=True),
                              indent=1))
        return
    table = Table("#", "rule", "tier", "when", title=f"Response policy {escape(loaded.name)} "
                  f"v{escape(loaded.version)}: first matching rule wins")
    for number, rule in enumerate(loaded.rules, 1):
        table.add_row(str(number), escape(rule.id), rule.tier.value, escape(rule.describe()))
    table.add_row("", "(default)", loaded.default_tier.value, "no rule matched")
    console.print(table)


def _print_scenario(result: Scenario) -> None:
    console.print(f"Policy [b]{escape(result.policy)}[/b] v{escape(result.policy_version)}: "
                  f"{result.classified_calls:,} classified calls of {result.calls:,} stored "
                  f"({result.calls - result.classified_calls:,} not classified, left out).")
    table = Table("tier", "calls", "share", "usable times", "not attended", "imputed",
                  "unit h measured", "unit h estimated", title="Calls and unit hours by tier")
    for t in result.tiers:
        table.add_row(t.tier, f"{t.calls:,}", f"{t.share:.1%}", f"{t.usable_times:,}",
                      f"{t.not_attended:,}", f"{t.imputed:,}", f"{t.unit_hours_measured:,.0f}",
                      f"{t.unit_hours_estimated:,.0f}")
    console.print(table)
    console.print(
        f"Diverted from police ({', '.join(DIVERTED_TIERS)}): [b]{result.diverted_calls:,} calls, "
        f"{result.diverted_share:.1%}[/b] of classified calls, "
        f"{result.diverted_unit_hours:,.0f} of {result.unit_hours_estimated:,.0f} estimated unit "
        f"hours on scene. co_response still sends police with the clinician.")
    console.print(
        f"Unit hours: on-scene time (arrived to cleared) of the first unit; "
        f"{result.usable_time_share:.1%} of calls had usable times; calls never dispatched count "
        "0 h; the rest are imputed with the mean of usable calls of the same category and "
        "priority.")
    _print_rules(result)
    if result.baseline:
        _print_transitions(result)
    if result.by:
        _print_breakdown(result)


def _print_rules(result: Scenario) -> None:
    table = Table("rule", "tier", "calls", "share", "unit h estimated",
                  title="Calls decided by each rule (first match wins)")
    for r in result.rules:
        table.add_row(escape(r.rule), r.tier, f"{r.calls:,}", f"{r.share:.1%}",
                      f"{r.unit_hours_estimated:,.0f}")
    console.print(table)


def _print_transitions(result: Scenario) -> None:
    table = Table(f"tier under {escape(str(result.baseline))}",
                  f"tier under {escape(result.policy)}", "calls", "unit h estimated",
                  title="Calls that change tier")
    moved = [t for t in result.transitions if t.from_tier != t.to_tier]
    for t in moved:
        table.add_row(t.from_tier, t.to_tier, f"{t.calls:,}", f"{t.unit_hours_estimated:,.0f}")
    if moved:
        console.print(table)
    stay = sum(t.calls for t in result.transitions if t.from_tier == t.to_tier)
    console.print(f"{sum(t.calls for t in moved):,} calls change tier against {result.baseline}; "
                  f"{stay:,} keep it.")


def _print_breakdown(result: Scenario) -> None:
    label = "hour of week" if result.by == "hour_of_week" else result.by or ""
    table = Table(label, "calls", "diverted", "diverted share", "unit h", "diverted unit h",
                  title=f"By {label}")
    for row in result.breakdown:
        key = hour_of_week_label(int(row.key)) if result.by == "hour_of_week" else row.key
        table.add_row(escape(str(key)), f"{row.calls:,}", f"{row.diverted_calls:,}",
                      f"{row.diverted_share:.1%}", f"{row.unit_hours_estimated:,.0f}",
                      f"{row.diverted_unit_hours:,.0f}")
    console.print(table)
    if result.breakdown_missing:
        console.print(f"{result.breakdown_missing:,} calls have no {label} and are not in the "
                      "table.")


@respond_app.command("scenario")
def scenario(
    ctx: typer.Context,
    policy: PolicyOption = None,
    by: Annotated[By | None, typer.Option(help="Also break the figures down by this.")] = None,
    area: Annotated[Area, typer.Option(help="Area column for --by area.")] = Area.DISTRICT,
    baseline: Annotated[Path | None, typer.Option(
        help="Compare with this policy (YAML, or 'default' for the shipped one): calls that "
        "change tier.", dir_okay=False)] = None,
    truth: TruthOption = None,
    json_out: JsonOption = False,
) -> None:
    """Calls and unit hours a response policy moves to each tier, and the share diverted."""
    loaded = _policy(ctx, policy)
    compared = None if baseline is None else load_policy(
        None if str(baseline) == "default" else baseline)
    con = store_of(ctx).connect()
    try:
        result = run_scenario(con, loaded, _relation(truth), by=by.value if by else None,
                              area=area.value, baseline=compared)
    finally:
        con.close()
    if json_out:
        typer.echo(json.dumps(result.to_dict(), indent=1))
    else:
        _print_scenario(result)


def _teams_grid(plan: StaffingPlan, teams: np.ndarray, title: str) -> Table:
    table = Table("day", *[f"{h:02d}" for h in range(24)], "team h", title=title,
                  padding=(0, 0))
    for day, name in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")):
        row = teams[day * 24:(day + 1) * 24]
        table.add_row(name, *[f"{int(t):>2}" for t in row], str(int(row.sum())))
    return table


def _print_plan(plan: StaffingPlan) -> None:
    data = plan.to_dict()
    target = plan.target
    console.print(
        f"[b]{plan.tier}[/b]: {plan.arrivals.per_week:,.1f} calls a week "
        f"({plan.arrivals.calls:,} calls over {plan.arrivals.weeks_observed:.1f} weeks). "
        f"Target: {target.share:.0%} reached (dispatch request to arrival) within "
        f"{target.minutes:g} min, "
        f"{'in every hour of the week' if target.scope == 'hour' else 'over the whole week'}.")
    service = data["service_times"]
    console.print(
        f"Service times: travel mean {service['travel_mean']:.1f} min, P90 "
        f"{service['travel_p90']:.0f} min; on scene mean {service['on_scene_mean']:.1f} min "
        f"(fitted on {service['provenance'].get('file', '?')}, "
        f"{service['provenance'].get('travel_used', '?')} travel times). Travel alone reaches "
        f"{plan.travel_alone_share:.1%} within {target.minutes:g} min.")
    console.print(_teams_grid(plan, plan.sim_teams, "Teams on duty by hour (simulation)"))
    console.print(_teams_grid(plan, plan.erlang_teams, "Teams on duty by hour (Erlang C)"))
    table = Table("", "Erlang C", "simulation", "gap", title="Erlang C against simulation")
    erl, sim = data["erlang_c"], data["simulation"]
    low_e, high_e = erl["simulated_share_interval_95"]
    low_s, high_s = sim["simulated_share_interval_95"]
    table.add_row("team hours a week", str(erl["team_hours_per_week"]),
                  str(sim["team_hours_per_week"]), f"{data['gap_team_hours_per_week']:+d}")
    table.add_row("weekly cost", f"{erl['weekly_cost']:,.0f}", f"{sim['weekly_cost']:,.0f}",
                  f"{sim['weekly_cost'] - erl['weekly_cost']:+,.0f}")
    table.add_row("annual cost", f"{erl['annual_cost']:,.0f}", f"{sim['annual_cost']:,.0f}",
                  f"{sim['annual_cost'] - erl['annual_cost']:+,.0f}")
    table.add_row("share in time, Erlang C model", f"{erl['predicted_share_within_target']:.1%}",
                  "", "")
    table.add_row("share in time, simulated (95% interval)",
                  f"{erl['simulated_share_within_target']:.1%} [{low_e:.1%}, {high_e:.1%}]",
                  f"{sim['simulated_share_within_target']:.1%} [{low_s:.1%}, {high_s:.1%}]", "")
    table.add_row("mean wait for a team, simulated (min)",
                  f"{erl['simulated_mean_wait_minutes']:.1f}",
                  f"{sim['simulated_mean_wait_minutes']:.1f}", "")
    console.print(table)
    console.print(f"Cost at {target.hourly_cost:,.2f} per team hour; a year is "
                  f"{WEEKS_PER_YEAR:.2f} weeks. Simulation: {plan.sim.replications} replications "
                  f"of {plan.sim.weeks} weeks after a warm-up week, seed {plan.sim.seed}.")
    if plan.hours_limited_by_travel:
        console.print("Hours below the target in simulation although no call waited for a team "
                      "(more teams cannot help: travel alone, and sampling noise where few calls "
                      "arrive): "
                      + ", ".join(hour_of_week_label(h) for h in plan.hours_limited_by_travel))
    if plan.hours_short_at_max:
        console.print(f"[red]Hours short of the target at --max-teams {target.max_teams}:[/red] "
                      + ", ".join(hour_of_week_label(h) for h in plan.hours_short_at_max))


def _arrivals(ctx: typer.Context, loaded: Policy, tier: Tier, truth: Path | None,
              per_week: float | None) -> Arrivals:
    con = store_of(ctx).connect()
    relation = _relation(truth)
    try:
        classified = con.execute(f"SELECT count(category) FROM {relation}").fetchall()[0][0]
        if classified or per_week is None:
            arrivals = arrivals_by_hour_of_week(con, loaded, tier, relation)
            return arrivals if per_week is None else arrivals.scaled(per_week)
        return arrivals_shaped_like_all_calls(con, tier, per_week, relation)
    finally:
        con.close()


@respond_app.command("staffing")
def staffing(
    ctx: typer.Context,
    policy: PolicyOption = None,
    tier: Annotated[Tier, typer.Option(help="Tier whose team is staffed.")] = Tier.CIVILIAN_CRISIS,
    target_minutes: Annotated[float, typer.Option(
        min=1, help="Reach calls (dispatch request to arrival) within this many minutes.")] = 20,
    target_share: Annotated[float, typer.Option(
        min=0.01, max=0.999, help="...for at least this share of calls in each hour.")] = 0.9,
    hourly_cost: Annotated[float, typer.Option(min=0, help="Cost of one team for one hour.")
                           ] = 95.0,
    max_teams: Annotated[int, typer.Option(min=1, help="Most teams on duty at once.")] = 20,
    scope: Annotated[Scope, typer.Option(
        help="Where the target share must hold: for the calls of every hour of the week, or "
        "over the whole week (cheaper; quiet hours may fall short).")] = Scope.HOUR,
    arrivals_per_week: Annotated[float | None, typer.Option(
        min=0.01, help="Calls a week for the team, spread over the week like the tier's calls "
        "(or like all stored calls when none is classified).")] = None,
    times: Annotated[Path | None, typer.Option(
        help="Fitted service times JSON (default: settings, else the packaged Lane County fit).",
        dir_okay=False)] = None,
    truth: TruthOption = None,
    weeks: Annotated[int, typer.Option(min=1, help="Simulated weeks per replication.")] = 26,
    replications: Annotated[int, typer.Option(min=2, help="Simulation replications.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the simulation.")] = 1,
    json_out: JsonOption = False,
) -> None:
    """Teams per hour of week for a response-time target: Erlang C and simulation, with cost."""
    loaded = _policy(ctx, policy)
    service = load_service_times(times or settings_of(ctx).respond_service_times)
    arrivals = _arrivals(ctx, loaded, tier, truth, arrivals_per_week)
    plan = plan_staffing(arrivals, service, StaffingTarget(target_minutes, target_share,
                                                           hourly_cost, max_teams, scope.value),
                         SimulationSettings(weeks, replications, seed))
    if json_out:
        typer.echo(json.dumps(plan.to_dict(), indent=1))
    else:
        _print_plan(plan)


@respond_app.command("fit-times")
def fit_times(
    dispatches: Annotated[Path, typer.Argument(
        help="A crisis team's dispatch records as CSV (Lane County MCSLC dispatches.csv).",
        dir_okay=False)],
    output: Annotated[Path | None, typer.Option(
        help="Write the fitted times here (else print them).", dir_okay=False)] = None,
) -> None:
    """Fit travel and on-scene time distributions from a crisis team's dispatch file."""
    fitted = fit_service_times(dispatches)
    text = json.dumps(fitted, indent=1) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.parent and not output.parent.is_dir():
        raise SourceFileError(f"folder {output.parent} does not exist")
    atomic_write(output, text)
    travel, scene = fitted["travel"]["summary"], fitted["on_scene"]["summary"]
    console.print(f"Wrote {output}: travel n={travel['n']}, median {travel['p50']:g}, P90 "
                  f"{travel['p90']:g} min; on scene n={scene['n']}, median {scene['p50']:g}, "
                  f"P90 {scene['p90']:g} min.")


def register(app: typer.Typer) -> None:
    app.add_typer(respond_app, name="respond")
