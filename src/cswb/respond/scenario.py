"""Response scenarios: what a policy would move, in calls and unit hours, by tier, hour and area.

The scenario reads any DuckDB relation with the canonical call-record columns (``calls`` of the
analytic store, or a hand-built table in tests) and applies the policy's compiled ``CASE`` in one
pass. Only classified calls (``category`` not null) are placed; the others are counted apart.

Unit hours are on-scene time, ``cleared_at - arrived_at``, of the first unit (the record holds
one arrival): a call has *usable* times when both are present and the gap is between 0 and
:data:`MAX_ON_SCENE_HOURS`. A call with neither a dispatch nor an arrival time, from a source
that records dispatch or arrival times for other calls, was handled without a unit and counts
zero hours. Any other call lacks usable times; its hours are *imputed* as the mean on-scene time
of usable calls of the same category and priority (else of the same category), which does not
depend on the policy, so two policies are compared on the same hours. Both the measured and the
estimated (measured + imputed) figures are reported, with the share of calls each rests on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import duckdb

from cswb.errors import NoClassifiedCallsError, SourceFileError
from cswb.respond.policy import Policy, with_tier_sql
from cswb.respond.tiers import DIVERTED_TIERS, Tier
from cswb.storage.sql import ident, lit, run

MAX_ON_SCENE_HOURS = 24
"""Longer on-scene gaps are taken as data errors (a call left open), not as work."""

Breakdown = Literal["hour_of_week", "area"]
AREA_COLUMNS = ("district", "sector", "beat", "neighbourhood")


@dataclass(frozen=True)
class TierFigures:
    """Calls and unit hours a policy places in one tier."""

    tier: str
    calls: int
    share: float
    usable_times: int
    not_attended: int
    imputed: int
    unit_hours_measured: float
    unit_hours_estimated: float


@dataclass(frozen=True)
class BreakdownRow:
    """Calls and unit hours of one hour of the week or one area, and how many are diverted."""

    key: str
    calls: int
    diverted_calls: int
    diverted_share: float
    unit_hours_estimated: float
    diverted_unit_hours: float


@dataclass(frozen=True)
class RuleFigures:
    """Calls one rule of the policy decided (``(default)``: no rule matched)."""

    rule: str
    tier: str
    calls: int
    share: float
    unit_hours_estimated: float


@dataclass(frozen=True)
class Transition:
    """Calls a baseline policy sends to ``from_tier`` that the policy sends to ``to_tier``."""

    from_tier: str
    to_tier: str
    calls: int
    unit_hours_estimated: float


@dataclass(frozen=True)
class Scenario:
    """The result of applying a response policy to a set of calls."""

    policy: str
    policy_version: str
    calls: int
    classified_calls: int
    tiers: list[TierFigures]
    diverted_calls: int
    diverted_share: float
    diverted_unit_hours: float
    unit_hours_estimated: float
    usable_time_share: float
    rules: list[RuleFigures] = field(default_factory=list)
    baseline: str | None = None
    transitions: list[Transition] = field(default_factory=list)
    by: str | None = None
    breakdown: list[BreakdownRow] = field(default_factory=list)
    breakdown_missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["diverted_tiers"] = [t.value for t in DIVERTED_TIERS]
        return data


_DIVERTED = "(" + ", ".join(lit(t) for t in DIVERTED_TIERS) + ")"


def _placed_sql(relation: str, policy: Policy, baseline: Policy | None = None) -> str:
    """One row per classified call: tier, rule, hours (measured or imputed) and keys."""
    placed = with_tier_sql(policy, relation, rule_column="policy_rule")
    if baseline is not None:
        placed = with_tier_sql(baseline, placed, tier_column="baseline_tier")
    on_scene = ("CASE WHEN arrived_at IS NOT NULL AND cleared_at >= arrived_at AND "
                f"cleared_at <= arrived_at + INTERVAL {MAX_ON_SCENE_HOURS} HOUR "
                "THEN epoch(cleared_at - arrived_at) / 3600.0 END")
    return f"""
    WITH src AS (
        SELECT *, {on_scene} AS measured,
               (dispatched_at IS NULL AND arrived_at IS NULL
                AND bool_or(dispatched_at IS NOT NULL OR arrived_at IS NOT NULL)
                    OVER (PARTITION BY source)) AS not_attended
        FROM {placed}
        WHERE category IS NOT NULL
    ), means AS (
        SELECT *, avg(measured) OVER (PARTITION BY category, priority) AS priority_mean,
               avg(measured) OVER (PARTITION BY category) AS category_mean
        FROM src
    )
    SELECT *,
           CASE WHEN measured IS NOT NULL THEN 'usable' WHEN not_attended THEN 'not_attended'
                ELSE 'imputed' END AS time_basis,
           coalesce(measured, CASE WHEN not_attended THEN 0 END, priority_mean, category_mean, 0)
               AS hours,
           tier IN {_DIVERTED} AS diverted,
           (isodow(local_date) - 1) * 24 + local_hour AS hour_of_week
    FROM means
    """


def _tier_figures(con: duckdb.DuckDBPyConnection, placed: str, classified: int
                  ) -> list[TierFigures]:
    rows = run(con, f"""
        SELECT tier, count(*), count(*) FILTER (time_basis = 'usable'),
               count(*) FILTER (time_basis = 'not_attended'),
               count(*) FILTER (time_basis = 'imputed'),
               coalesce(sum(measured), 0), coalesce(sum(hours), 0)
        FROM ({placed}) GROUP BY tier""")
    by_tier = {r[0]: r for r in rows}
    figures = []
    for tier in Tier:
        _, calls, usable, unattended, imputed, measured, estimated = by_tier.get(
            tier.value, (tier.value, 0, 0, 0, 0, 0.0, 0.0))
        figures.append(TierFigures(tier.value, calls, calls / classified, usable, unattended,
                                   imputed, round(measured, 2), round(estimated, 2)))
    return figures


def _rule_figures(con: duckdb.DuckDBPyConnection, placed: str, policy: Policy,
                  classified: int) -> list[RuleFigures]:
    found = {r[0]: r for r in run(con, f"""
        SELECT coalesce(policy_rule, '(default)'), count(*), coalesce(sum(hours), 0)
        FROM ({placed}) GROUP BY ALL""")}
    order = [(r.id, r.tier.value) for r in policy.rules]
    order.append(("(default)", policy.default_tier.value))
    figures = []
    for rule, tier in order:
        _, calls, hours = found.get(rule, (rule, 0, 0.0))
        figures.append(RuleFigures(rule, tier, calls, calls / classified, round(hours, 2)))
    return figures


def _transitions(con: duckdb.DuckDBPyConnection, placed: str) -> list[Transition]:
    rows = run(con, f"""
        SELECT baseline_tier, tier, count(*), coalesce(sum(hours), 0)
        FROM ({placed}) GROUP BY baseline_tier, tier
        ORDER BY baseline_tier = tier, count(*) DESC, baseline_tier, tier""")
    return [Transition(f, t, n, round(h, 2)) for f, t, n, h in rows]


def _breakdown(con: duckdb.DuckDBPyConnection, placed: str, key_sql: str
               ) -> tuple[list[BreakdownRow], int]:
    rows = run(con, f"""
        SELECT {key_sql} AS key, count(*), count(*) FILTER (diverted),
               sum(hours), coalesce(sum(hours) FILTER (diverted), 0)
        FROM ({placed}) WHERE {key_sql} IS NOT NULL GROUP BY ALL ORDER BY key""")
    missing = run(con, f"SELECT count(*) FROM ({placed}) WHERE {key_sql} IS NULL")[0][0]
    return [BreakdownRow(str(k), n, d, d / n, round(h, 2), round(dh, 2))
            for k, n, d, h, dh in rows], missing


def run_scenario(con: duckdb.DuckDBPyConnection, policy: Policy, relation: str = "calls", *,
                 by: Breakdown | None = None, area: str = "district",
                 baseline: Policy | None = None) -> Scenario:
    """Apply ``policy`` to the calls of ``relation`` and sum calls and unit hours per tier.

    With ``baseline``, also count the calls that move from each baseline tier to each tier.
    """
    if area not in AREA_COLUMNS:
        raise ValueError(f"area must be one of {AREA_COLUMNS}")
    total, classified = run(con, f"SELECT count(*), count(category) FROM {relation}")[0]
    if classified == 0:
        raise NoClassifiedCallsError(
            f"none of the {total:,} calls is classified (category is empty), so no policy can "
            "place them: classify the calls first (`cswb classify apply`), then run the "
            "scenario again"
            if total else "there are no calls: ingest some first (`cswb ingest`)")
    placed = _placed_sql(relation, policy, baseline)
    tiers = _tier_figures(con, placed, classified)
    diverted = [t for t in tiers if Tier(t.tier) in DIVERTED_TIERS]
    hours = sum(t.unit_hours_estimated for t in tiers)
    scenario = Scenario(
        policy=policy.name, policy_version=policy.version, calls=total,
        classified_calls=classified, tiers=tiers,
        diverted_calls=sum(t.calls for t in diverted),
        diverted_share=sum(t.calls for t in diverted) / classified,
        diverted_unit_hours=round(sum(t.unit_hours_estimated for t in diverted), 2),
        unit_hours_estimated=round(hours, 2),
        usable_time_share=sum(t.usable_times for t in tiers) / classified,
        rules=_rule_figures(con, placed, policy, classified),
        baseline=None if baseline is None else f"{baseline.name} v{baseline.version}",
        transitions=[] if baseline is None else _transitions(con, placed))
    if by is None:
        return scenario
    key_sql = "hour_of_week" if by == "hour_of_week" else ident(area)
    rows, missing = _breakdown(con, placed, key_sql)
    return replace(scenario, by=by if by == "hour_of_week" else area, breakdown=rows,
                   breakdown_missing=missing)


def with_truth(relation: str, truth: Path) -> str:
    """``relation`` with category and flags taken from a synthetic city's ``truth.parquet``.

    For the demo city before its calls are classified: the truth table holds every synthetic
    call's true category and flags, keyed by ``call_id``.
    """
    if not truth.is_file():
        raise SourceFileError(f"truth table {truth} does not exist")
    return (f"(SELECT c.* REPLACE (t.category AS category, t.flags AS flags) FROM {relation} c "
            f"JOIN read_parquet({lit(str(truth))}) t USING (call_id))")


def hour_of_week_label(hour: int) -> str:
    """``Mon 00`` .. ``Sun 23`` for hour-of-week 0..167 (Monday midnight is 0)."""
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    return f"{days[hour // 24]} {hour % 24:02d}"
