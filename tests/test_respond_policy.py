"""Response policy: validation on load, and the compiled CASE against rule-by-rule evaluation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cswb.errors import PolicyError
from cswb.respond.policy import (
    TAXONOMY_CATEGORIES,
    TAXONOMY_FLAGS,
    Policy,
    load_policy,
    policy_from_data,
    rule_sql,
    tier_sql,
    with_tier_sql,
)
from cswb.respond.tiers import Tier


def _policy(*rules: dict[str, Any], default: str = "police") -> dict[str, Any]:
    return {"name": "test", "default_tier": default, "rules": list(rules)}


def _rule(rule_id: str, tier: str = "civilian_crisis", **conditions: Any) -> dict[str, Any]:
    return {"id": rule_id, "tier": tier, "rationale": "because the test says so", **conditions}


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(PolicyError) as caught:
        policy_from_data(data, "test.yaml")
    return str(caught.value)


def test_default_policy_loads_and_every_rule_cites_a_rationale() -> None:
    policy = load_policy()
    assert policy.default_tier is Tier.POLICE
    assert len({r.id for r in policy.rules}) == len(policy.rules)
    cited = {p for r in policy.rules for p in r.follows}
    assert {"CAHOOTS", "Denver STAR", "Toronto Community Crisis Service", "IMPACT",
            "MCRRT"} <= cited


@pytest.mark.parametrize(("call", "tier"), [
    (("behavioral_health", ["mental_health"], 3), Tier.CIVILIAN_CRISIS),
    (("complaint", ["mental_health", "suicide"], 2), Tier.CIVILIAN_CRISIS),
    (("complaint", ["mental_health", "weapon"], 2), Tier.CO_RESPONSE),
    (("complaint", ["mental_health", "weapon", "in_progress"], 2), Tier.POLICE_EMERGENCY),
    (("assist_public", ["welfare"], 3), Tier.COMMUNITY_SERVICE),
    (("liquor", ["substance_use"], 3), Tier.COMMUNITY_SERVICE),
    (("property_crime", [], 4), Tier.ALTERNATIVE_REPORTING),
    (("property_crime", ["in_progress"], 3), Tier.POLICE),
    (("medical", [], 1), Tier.EMS_FIRE),
    (("call_issue", [], None), Tier.NO_DISPATCH),
    (("officer_status", [], 4), Tier.OFFICER_ACTIVITY),
    (("violent_crime", ["violence", "in_progress"], 2), Tier.POLICE_EMERGENCY),
    (("domestic_violence", ["domestic"], 3), Tier.POLICE),
    (("traffic", [], 3), Tier.POLICE),
])
def test_default_policy_places_typical_calls(call: tuple[str, list[str], int | None],
                                             tier: Tier) -> None:
    assert load_policy().tier_for(*call) is tier


def test_unknown_category_names_the_rule_and_field() -> None:
    message = _error(_policy(_rule("crisis", categories=["behavioural_health"])))
    assert "rule 'crisis' (rule 1): categories" in message
    assert "unknown category 'behavioural_health'" in message


def test_unknown_flag_and_tier_are_reported_together() -> None:
    message = _error(_policy(_rule("a", flags={"any": ["mental"]}),
                             _rule("b", tier="social_work", categories=["medical"])))
    assert "rule 'a' (rule 1): flags.any: unknown flag 'mental'" in message
    assert "rule 'b' (rule 2): tier" in message


def test_empty_rule_and_empty_lists_are_rejected() -> None:
    assert "has no conditions" in _error(_policy(_rule("empty")))
    assert "empty list of categories" in _error(_policy(_rule("e", categories=[])))
    assert "empty flag condition" in _error(_policy(_rule("f", flags={})))


def test_bad_priority_range() -> None:
    assert "min 3 is greater than max 2" in _error(
        _policy(_rule("p", priority={"min": 3, "max": 2})))
    assert "priority.max" in _error(_policy(_rule("p", priority={"max": 5})))


def test_contradictory_flags() -> None:
    assert "both required (all) and excluded (none)" in _error(
        _policy(_rule("c", flags={"all": ["weapon"], "none": ["weapon"]})))


def test_rule_after_a_catch_all_is_unreachable() -> None:
    every_category = list(TAXONOMY_CATEGORIES)
    message = _error(_policy(_rule("everything", categories=every_category),
                             _rule("crisis", categories=["behavioral_health"])))
    assert "rule 'crisis' (rule 2) is unreachable" in message
    assert "earlier rule 'everything'" in message


def test_rule_shadowed_by_a_wider_earlier_rule_is_unreachable() -> None:
    message = _error(_policy(
        _rule("crisis", flags={"any": ["mental_health", "suicide"]}),
        _rule("narrow", categories=["complaint"], flags={"all": ["suicide"]},
              priority={"min": 2, "max": 3})))
    assert "rule 'narrow' (rule 2) is unreachable" in message


def test_every_problem_across_rules_is_listed() -> None:
    every_category = list(TAXONOMY_CATEGORIES)
    message = _error(_policy(_rule("a", categories=["medical"]), _rule("a", categories=["fire"]),
                             _rule("all", categories=every_category),
                             _rule("late", categories=["traffic"])))
    assert "rule 'a' (rule 2): id already used by rule 1" in message
    assert "rule 'late' (rule 4) is unreachable" in message


def test_narrower_rule_before_a_wider_one_is_fine() -> None:
    policy = policy_from_data(_policy(
        _rule("narrow", tier="co_response", flags={"all": ["suicide", "weapon"]}),
        _rule("crisis", flags={"any": ["mental_health", "suicide"]})), "test")
    assert [r.id for r in policy.rules] == ["narrow", "crisis"]


def test_duplicate_ids_and_bad_yaml(tmp_path: Path) -> None:
    assert "id already used by rule 1" in _error(
        _policy(_rule("a", categories=["medical"]), _rule("a", categories=["fire"])))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrules: [\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML at line"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "missing.yaml")


def test_the_example_in_the_docs_is_a_valid_policy() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "respond.md").read_text("utf-8")
    (example,) = re.findall(r"```yaml\n(.*?)```", page, flags=re.S)
    policy = policy_from_data(yaml.safe_load(example), "docs/respond.md")
    assert policy.tier_for("complaint", ["mental_health"], 3) is Tier.CIVILIAN_CRISIS
    assert policy.tier_for("complaint", ["mental_health", "weapon"], 3) is Tier.CO_RESPONSE


def test_policy_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(_policy(_rule("crisis", categories=["behavioral_health"]))),
                    encoding="utf-8")
    assert load_policy(path).tier_for("behavioral_health", [], None) is Tier.CIVILIAN_CRISIS


# --- the compiled CASE expression against the rule-by-rule reference ------------------------

categories = st.one_of(st.none(), st.sampled_from(TAXONOMY_CATEGORIES))
flag_sets = st.one_of(st.none(), st.lists(st.sampled_from(TAXONOMY_FLAGS), unique=True,
                                          max_size=4))
priorities = st.one_of(st.none(), st.integers(1, 4))
calls = st.lists(st.tuples(categories, flag_sets, priorities), min_size=1, max_size=60)

flag_lists = st.lists(st.sampled_from(TAXONOMY_FLAGS), min_size=1, max_size=3, unique=True)
random_rules = st.fixed_dictionaries({
    "tier": st.sampled_from([t.value for t in Tier]),
    "categories": st.lists(st.sampled_from(TAXONOMY_CATEGORIES), min_size=1, max_size=8,
                           unique=True),
    "flags": st.one_of(st.none(), st.fixed_dictionaries(
        {}, optional={"any": flag_lists, "all": flag_lists, "none": flag_lists}).filter(bool)),
    "priority": st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4)).map(
        lambda p: {"min": min(p), "max": max(p)})),
}).map(lambda r: {**r, "categories": None} if len(r["categories"]) == 8 else r)
"""Random rules; a rule drawn with 8 categories has none (matches any category)."""


def _sql_tiers(policy: Policy, rows: list[tuple[str | None, list[str] | None, int | None]]
               ) -> list[tuple[str, str | None]]:
    """Tiers and rules by the list-function CASE, checked equal to the bit-test form."""
    con = duckdb.connect()
    con.execute("CREATE TABLE c (n INTEGER, category VARCHAR, flags VARCHAR[], priority TINYINT)")
    con.executemany("INSERT INTO c VALUES (?, ?, ?, ?)",
                    [(i, *row) for i, row in enumerate(rows)])
    plain = con.execute(f"SELECT {tier_sql(policy)}, {rule_sql(policy)} FROM c ORDER BY n"
                        ).fetchall()
    fast = con.execute(f"SELECT tier FROM {with_tier_sql(policy, 'c')} ORDER BY n").fetchall()
    assert [t for t, _ in plain] == [t for (t,) in fast]
    return [(t, r) for t, r in plain]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls)
def test_default_policy_sql_matches_python(rows: list[tuple[Any, Any, Any]]) -> None:
    policy = load_policy()
    expected = [(policy.tier_for(*row).value, policy.rule_for(*row)) for row in rows]
    assert _sql_tiers(policy, rows) == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(random_rules, min_size=1, max_size=6), calls)
def test_random_policy_sql_matches_python(rules: list[dict[str, Any]],
                                          rows: list[tuple[Any, Any, Any]]) -> None:
    data = _policy(*[_rule(f"r{i}", **{k: v for k, v in r.items() if v is not None})
                     for i, r in enumerate(rules)])
    try:
        policy = policy_from_data(data, "random")
    except PolicyError:
        return  # about half the random policies are invalid (shadowed rules...): tested above
    expected = [(policy.tier_for(*row).value, policy.rule_for(*row)) for row in rows]
    assert _sql_tiers(policy, rows) == expected


def test_policy_files_that_are_no_text_or_too_deep(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\ndefault_tier: police\nrules: []\n")
    with pytest.raises(PolicyError, match="is not UTF-8"):
        load_policy(latin)
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: " + "[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="nested too deeply"):
        load_policy(deep)


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    twice = tmp_path / "twice.yaml"
    twice.write_text("name: x\ndefault_tier: police\nrules:\n  - id: a\n    tier: police\n"
                     "    tier: civilian_crisis\n    categories: [behavioral_health]\n"
                     "    rationale: A crisis goes to the civilian team.\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="line 6: the key 'tier' is given twice"):
        load_policy(twice)


@pytest.mark.parametrize("bound", ["true", "2.0", "'2'"])
def test_a_priority_bound_must_be_a_whole_number(tmp_path: Path, bound: str) -> None:
    """YAML's ``true`` was taken as priority 1, ``2.0`` and ``'2'`` as 2."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("name: x\nversion: '1'\ndefault_tier: police\nrules:\n  - id: a\n"
                      "    tier: civilian_crisis\n    categories: [behavioral_health]\n"
                      f"    priority: {{max: {bound}}}\n"
                      "    rationale: A crisis goes to the civilian team.\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"priority\.max: Input should be a valid integer"):
        load_policy(policy)
