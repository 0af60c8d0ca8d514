"""The local response policy: ordered rules from category, flags and priority to a responder tier.

A policy is YAML (see ``docs/respond.md``)::

    name: default
    version: "1"
    default_tier: police
    rules:
      - id: crisis_with_weapon_or_violence
        tier: co_response
        flags: {all: [mental_health], any: [weapon, violence]}
        priority: {min: 1, max: 4}
        rationale: Why, citing the programme followed.
        follows: [IMPACT, MCRRT]

The first rule whose conditions all hold decides the call's tier; a call no rule matches gets
``default_tier``. Conditions: ``categories`` (the call's category is one of them), ``flags.any``
(at least one), ``flags.all`` (every one), ``flags.none`` (none of them), ``priority`` (an
inclusive range on the 1-4 scale; a call without a priority never matches a rule that names a
range). A policy is validated when it is loaded: unknown categories, flags or tiers, a rule
without conditions, a contradictory rule and a rule that an earlier rule shadows completely
are errors naming the rule and the field. :func:`tier_sql` compiles the whole policy to one
SQL ``CASE`` expression, so a policy is applied to millions of calls in one vectorised pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from cswb.classify.taxonomy import load_taxonomy
from cswb.errors import PolicyError, SourceFileError
from cswb.files import load_yaml, read_text_file
from cswb.respond.tiers import Tier
from cswb.storage.sql import ident, lit

DEFAULT_POLICY_RESOURCE = "default_policy.yaml"
TAXONOMY_CATEGORIES: tuple[str, ...] = load_taxonomy().category_codes
TAXONOMY_FLAGS: tuple[str, ...] = load_taxonomy().flag_codes
"""Codes a policy may name: those of the taxonomy (``cswb/classify/taxonomy.yaml``)."""
PRIORITY_LEVELS = (1, 2, 3, 4)


def _check_known(values: Sequence[str], known: Sequence[str], kind: str, kinds: str
                 ) -> tuple[str, ...]:
    if not values:
        raise ValueError(f"empty list of {kinds}: omit the field instead")
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f"unknown {kind} {', '.join(map(repr, unknown))}; "
                         f"known {kinds}: {', '.join(known)}")
    if len(set(values)) != len(values):
        raise ValueError(f"a {kind} is listed twice")
    return tuple(values)


class FlagCondition(BaseModel):
    """Which taxonomy flags a call must carry (any, all) or must not carry (none)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    any_of: tuple[str, ...] | None = Field(None, alias="any", description="At least one of.")
    all_of: tuple[str, ...] | None = Field(None, alias="all", description="Every one of.")
    none_of: tuple[str, ...] | None = Field(None, alias="none", description="None of.")

    @field_validator("any_of", "all_of", "none_of")
    @classmethod
    def _known_flags(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else _check_known(value, TAXONOMY_FLAGS, "flag", "flags")

    @model_validator(mode="after")
    def _consistent(self) -> FlagCondition:
        if self.any_of is None and self.all_of is None and self.none_of is None:
            raise ValueError("empty flag condition: give any, all or none")
        excluded = set(self.none_of or ())
        both = sorted(set(self.all_of or ()) & excluded)
        if both:
            raise ValueError(f"flag(s) {', '.join(both)} both required (all) and excluded (none)")
        if self.any_of is not None and set(self.any_of) <= excluded:
            raise ValueError("every flag of 'any' is also excluded by 'none'")
        return self

    def matches(self, flags: frozenset[str]) -> bool:
        """Whether a call carrying ``flags`` meets the condition (reference evaluation)."""
        return ((self.any_of is None or bool(flags & set(self.any_of)))
                and (self.all_of is None or set(self.all_of) <= flags)
                and (self.none_of is None or not flags & set(self.none_of)))


class PriorityRange(BaseModel):
    """An inclusive range on the normalised priority scale (1 emergency .. 4 non-urgent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: StrictInt = Field(1, ge=1, le=4, description="Most urgent priority matched.")
    max: StrictInt = Field(4, ge=1, le=4, description="Least urgent priority matched.")

    @model_validator(mode="after")
    def _ordered(self) -> PriorityRange:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    def covers(self, other: PriorityRange) -> bool:
        return self.min <= other.min and other.max <= self.max


class Rule(BaseModel):
    """One rule of a response policy: conditions on a call, the tier it gets, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Unique id (snake_case).")
    tier: Tier = Field(description="Tier given to the calls the rule matches.")
    categories: tuple[str, ...] | None = Field(None, description="Category is one of these.")
    flags: FlagCondition | None = Field(None, description="Flag conditions.")
    priority: PriorityRange | None = Field(None, description="Priority range.")
    rationale: str = Field(min_length=10, description="Why these calls go to this tier.")
    follows: tuple[str, ...] = Field((), description="Programmes the rule follows.")

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        return _check_known(value, TAXONOMY_CATEGORIES, "category", "categories")

    @model_validator(mode="after")
    def _has_condition(self) -> Rule:
        if self.categories is None and self.flags is None and self.priority is None:
            raise ValueError("the rule has no conditions (categories, flags or priority); "
                             "a rule matching every call is the policy's default_tier")
        return self

    def matches(self, category: str | None, flags: Iterable[str] | None,
                priority: int | None) -> bool:
        """Reference (row-at-a-time) evaluation, the specification :func:`tier_sql` follows."""
        if self.categories is not None and category not in self.categories:
            return False
        if self.priority is not None and (
                priority is None or not self.priority.min <= priority <= self.priority.max):
            return False
        return self.flags is None or self.flags.matches(frozenset(flags or ()))

    def describe(self) -> str:
        """The rule's conditions in words, as the CLI and the docs show them."""
        parts = []
        if self.categories:
            parts.append("category " + " / ".join(self.categories))
        if self.flags is not None:
            for label, values in (("any of", self.flags.any_of), ("all of", self.flags.all_of),
                                  ("none of", self.flags.none_of)):
                if values:
                    parts.append(f"flags {label} " + ", ".join(values))
        if self.priority is not None:
            low, high = self.priority.min, self.priority.max
            parts.append(f"priority {low}" if low == high else f"priority {low}-{high}")
        return "; ".join(parts)

    def shadows(self, later: Rule) -> bool:
        """True when every call ``later`` could match is already matched by this rule."""
        return (_categories_cover(self.categories, later.categories)
                and _priority_covers(self.priority, later.priority)
                and _flags_cover(self.flags, later.flags))


def _categories_cover(first: tuple[str, ...] | None, later: tuple[str, ...] | None) -> bool:
    return first is None or (later is not None and set(later) <= set(first))


def _priority_covers(first: PriorityRange | None, later: PriorityRange | None) -> bool:
    return first is None or (later is not None and first.covers(later))


def _flags_cover(first: FlagCondition | None, later: FlagCondition | None) -> bool:
    """Sufficient test that every flag set meeting ``later`` also meets ``first``."""
    if first is None:
        return True
    if later is None:
        return False
    required = set(later.all_of or ())
    excluded = set(later.none_of or ())
    if not set(first.all_of or ()) <= required or not set(first.none_of or ()) <= excluded:
        return False
    if first.any_of is None or required & set(first.any_of):
        return True
    return later.any_of is not None and set(later.any_of) - excluded <= set(first.any_of)


class Policy(BaseModel):
    """A whole response policy: ordered rules and the tier of calls no rule matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Short name of the policy.")
    version: str = Field("1", description="Version of the policy, recorded with its results.")
    description: str = Field("", description="What the policy is for.")
    default_tier: Tier = Field(description="Tier of calls that no rule matches.")
    default_rationale: str = Field("", description="Why unmatched calls get the default tier.")
    rules: tuple[Rule, ...] = Field(description="Rules, first match wins.")

    @model_validator(mode="after")
    def _reachable(self) -> Policy:
        if not self.rules:
            raise ValueError("a policy needs at least one rule")
        problems: list[str] = []
        seen: dict[str, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.id in seen:
                problems.append(f"rule {rule.id!r} (rule {index + 1}): id already used by "
                                f"rule {seen[rule.id] + 1}")
            seen.setdefault(rule.id, index)
            shadow = next((e for e in self.rules[:index] if e.shadows(rule)), None)
            if shadow is not None:
                problems.append(
                    f"rule {rule.id!r} (rule {index + 1}) is unreachable: every call it "
                    f"matches is already matched by earlier rule {shadow.id!r}")
        if problems:  # every one, not the first
            raise ValueError("; ".join(problems))
        return self

    def tier_for(self, category: str | None, flags: Iterable[str] | None,
                 priority: int | None) -> Tier:
        """Tier of one call, evaluated rule by rule (the reference for :func:`tier_sql`)."""
        flag_list = list(flags or ())
        for rule in self.rules:
            if rule.matches(category, flag_list, priority):
                return rule.tier
        return self.default_tier

    def rule_for(self, category: str | None, flags: Iterable[str] | None,
                 priority: int | None) -> str | None:
        """Id of the rule deciding one call, None when the default tier applies."""
        flag_list = list(flags or ())
        return next((r.id for r in self.rules if r.matches(category, flag_list, priority)), None)


def _list_sql(values: Iterable[str]) -> str:
    return "[" + ", ".join(lit(v) for v in values) + "]::VARCHAR[]"


FLAG_BITS_COLUMN = "__cswb_flag_bits"


def flag_bits_sql(flags: str = "flags") -> str:
    """The call's flags as one integer, bit i set for ``TAXONOMY_FLAGS[i]`` (0 when none)."""
    whens = " ".join(f"WHEN {lit(f)} THEN {1 << i}" for i, f in enumerate(TAXONOMY_FLAGS))
    return (f"coalesce(list_aggregate(list_transform({ident(flags)}, "
            f"lambda f: CASE f {whens} ELSE 0 END), 'bit_or'), 0)")


def _mask(values: Iterable[str]) -> int:
    return sum(1 << TAXONOMY_FLAGS.index(v) for v in values)


def _flag_conditions(condition: FlagCondition, flags: str, flag_bits: str | None) -> list[str]:
    parts = []
    if flag_bits is not None:
        bits = ident(flag_bits)
        if condition.any_of is not None:
            parts.append(f"({bits} & {_mask(condition.any_of)}) <> 0")
        if condition.all_of is not None:
            mask = _mask(condition.all_of)
            parts.append(f"({bits} & {mask}) = {mask}")
        if condition.none_of is not None:
            parts.append(f"({bits} & {_mask(condition.none_of)}) = 0")
        return parts
    have = f"coalesce({ident(flags)}, []::VARCHAR[])"
    if condition.any_of is not None:
        parts.append(f"list_has_any({have}, {_list_sql(condition.any_of)})")
    if condition.all_of is not None:
        parts.append(f"list_has_all({have}, {_list_sql(condition.all_of)})")
    if condition.none_of is not None:
        parts.append(f"NOT list_has_any({have}, {_list_sql(condition.none_of)})")
    return parts


def condition_sql(rule: Rule, category: str = "category", flags: str = "flags",
                  priority: str = "priority", flag_bits: str | None = None) -> str:
    """The rule's conditions as one SQL boolean expression over the named columns.

    With ``flag_bits`` (a column holding :func:`flag_bits_sql`), flag conditions are bit tests,
    several times faster than list functions on every row.
    """
    parts: list[str] = []
    if rule.categories is not None:
        parts.append(f"{ident(category)} IN ({', '.join(lit(c) for c in rule.categories)})")
    if rule.priority is not None:
        parts.append(f"{ident(priority)} BETWEEN {rule.priority.min} AND {rule.priority.max}")
    if rule.flags is not None:
        parts.extend(_flag_conditions(rule.flags, flags, flag_bits))
    return " AND ".join(f"({p})" for p in parts)


def _conditions(policy: Policy, category: str, flags: str, priority: str,
                flag_bits: str | None) -> list[str]:
    return [condition_sql(r, category, flags, priority, flag_bits) for r in policy.rules]


def tier_sql(policy: Policy, category: str = "category", flags: str = "flags",
             priority: str = "priority", flag_bits: str | None = None) -> str:
    """The policy as one SQL ``CASE`` expression giving each call's tier."""
    conditions = _conditions(policy, category, flags, priority, flag_bits)
    whens = " ".join(f"WHEN {c} THEN {lit(r.tier)}" for c, r in zip(conditions, policy.rules,
                                                                     strict=True))
    return f"CASE {whens} ELSE {lit(policy.default_tier)} END"


def rule_sql(policy: Policy, category: str = "category", flags: str = "flags",
             priority: str = "priority", flag_bits: str | None = None) -> str:
    """SQL ``CASE`` expression giving the id of the rule deciding each call (NULL: default)."""
    conditions = _conditions(policy, category, flags, priority, flag_bits)
    whens = " ".join(f"WHEN {c} THEN {lit(r.id)}" for c, r in zip(conditions, policy.rules,
                                                                   strict=True))
    return f"CASE {whens} ELSE NULL END"


def with_tier_sql(policy: Policy, relation: str, tier_column: str = "tier",
                  rule_column: str | None = None) -> str:
    """``relation`` with the policy's tier added (and the deciding rule's id, NULL for the
    default, when ``rule_column`` is given).

    The flags are turned into bits once per call and the rules become bit tests: the fast form
    used by scenarios and staffing.
    """
    bits = ident(FLAG_BITS_COLUMN)
    columns = f"{tier_sql(policy, flag_bits=FLAG_BITS_COLUMN)} AS {ident(tier_column)}"
    if rule_column is not None:
        columns += f", {rule_sql(policy, flag_bits=FLAG_BITS_COLUMN)} AS {ident(rule_column)}"
    return (f"(SELECT * EXCLUDE ({bits}), {columns} FROM "
            f"(SELECT *, {flag_bits_sql()} AS {bits} FROM {relation}))")


def _describe(error: ErrorDetails, data: Any) -> str:
    loc = list(error["loc"])
    where = "policy"
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        index = loc[1]
        rules = data.get("rules") if isinstance(data, dict) else None
        rule_id = (rules[index].get("id") if isinstance(rules, list) and index < len(rules)
                   and isinstance(rules[index], dict) else None)
        where = f"rule {rule_id!r} (rule {index + 1})" if rule_id else f"rule {index + 1}"
        loc = loc[2:]
    field = ".".join(str(p) for p in loc if not str(p).startswith("function-"))
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {field}: {message}" if field else f"{where}: {message}"


def policy_from_data(data: Any, origin: str) -> Policy:
    """Validate parsed YAML as a policy; :class:`PolicyError` lists every problem."""
    if not isinstance(data, dict):
        raise PolicyError(f"{origin}: a policy is a mapping with name, default_tier and rules")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e, data) for e in exc.errors())
        raise PolicyError(f"{origin}: invalid response policy: {problems}") from None


def load_policy(path: Path | None = None) -> Policy:
    """Load and validate a policy file; ``None`` loads the default policy shipped with cswb."""
    if path is None:
        text = resources.files("cswb.respond").joinpath(DEFAULT_POLICY_RESOURCE).read_text(
            encoding="utf-8")
        origin = f"default policy ({DEFAULT_POLICY_RESOURCE})"
    else:
        if not path.is_file():
            raise PolicyError(f"policy file {path} does not exist")
        try:
            text = read_text_file(path)
        except SourceFileError as exc:
            raise PolicyError(str(exc)) from None
        origin = str(path)
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem and "given twice" in problem else ""
        raise PolicyError(f"{origin}: not valid YAML{place}{detail}") from None
    except RecursionError:  # a policy is flat: thousands of nested brackets are no policy
        raise PolicyError(f"{origin}: nested too deeply to be a policy") from None
    return policy_from_data(data, origin)
