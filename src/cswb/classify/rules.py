"""The rule layer: category and flag patterns over normalised call types (``rules.yaml``).

Rules are data. Each has an id that ends up in ``decided_by`` (``rule:<id>``), so every
classification can be traced to the pattern that made it. Matching is vectorised: each pattern
runs once over the array of distinct normalised strings with Arrow's RE2 engine, and the first
matching category rule (in file order) decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from cswb.classify.taxonomy import Taxonomy
from cswb.errors import ClassifyError


@dataclass(frozen=True)
class CategoryRule:
    """A pattern that decides a category, with the confidence it carries."""

    id: str
    category: str
    pattern: str
    confidence: float


@dataclass(frozen=True)
class FlagRule:
    """A pattern that adds a flag."""

    id: str
    flag: str
    pattern: str


@dataclass(frozen=True)
class RuleSet:
    """Every rule, in precedence order."""

    version: str
    category_rules: tuple[CategoryRule, ...]
    flag_rules: tuple[FlagRule, ...]
    disposition_flag_rules: tuple[FlagRule, ...]

    def all_patterns(self) -> list[tuple[str, str]]:
        """(rule id, pattern) of every rule, for checks and docs."""
        rules: list[CategoryRule | FlagRule] = [
            *self.category_rules, *self.flag_rules, *self.disposition_flag_rules]
        return [(r.id, r.pattern) for r in rules]


def _check_pattern(rule_id: str, pattern: Any) -> str:
    if not isinstance(pattern, str) or not pattern:
        raise ClassifyError(f"rules: rule {rule_id} has no pattern")
    try:
        re.compile(pattern)
        pc.match_substring_regex(pa.array([""]), pattern=pattern)
    except (re.error, pa.ArrowInvalid) as exc:
        raise ClassifyError(f"rules: rule {rule_id} has an invalid pattern: {exc}") from None
    return pattern


def _rule_id(item: Any, where: str, seen: set[str]) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise ClassifyError(f"rules: {where} needs an 'id'")
    rule_id = str(item["id"])
    if rule_id in seen:
        raise ClassifyError(f"rules: rule id {rule_id} is used twice")
    seen.add(rule_id)
    return rule_id


def _category_rules(raw: Any, taxonomy: Taxonomy, seen: set[str]) -> tuple[CategoryRule, ...]:
    out = []
    for i, item in enumerate(raw or []):
        rule_id = _rule_id(item, f"category_rules[{i}]", seen)
        category = item.get("category")
        if category not in taxonomy.category_codes or category == "unknown":
            raise ClassifyError(f"rules: rule {rule_id} names category {category!r}, which is "
                                "not a category of the taxonomy")
        confidence = float(item.get("confidence", 0.85))
        if not 0 < confidence <= 1:
            raise ClassifyError(f"rules: rule {rule_id} has confidence {confidence}, not in (0, 1]")
        out.append(CategoryRule(rule_id, category, _check_pattern(rule_id, item.get("pattern")),
                                confidence))
    return tuple(out)


def _flag_rules(raw: Any, taxonomy: Taxonomy, seen: set[str], key: str) -> tuple[FlagRule, ...]:
    out = []
    for i, item in enumerate(raw or []):
        rule_id = _rule_id(item, f"{key}[{i}]", seen)
        flag = item.get("flag")
        if flag not in taxonomy.flag_codes:
            raise ClassifyError(f"rules: rule {rule_id} names flag {flag!r}, which is not a flag "
                                "of the taxonomy")
        out.append(FlagRule(rule_id, flag, _check_pattern(rule_id, item.get("pattern"))))
    return tuple(out)


def parse_rules(raw: Any, taxonomy: Taxonomy) -> RuleSet:
    """Validate a parsed rules document against the taxonomy."""
    if not isinstance(raw, dict) or not raw.get("category_rules"):
        raise ClassifyError("rules: the document needs a non-empty 'category_rules' list")
    seen: set[str] = set()
    return RuleSet(str(raw.get("version", "1")),
                   _category_rules(raw["category_rules"], taxonomy, seen),
                   _flag_rules(raw.get("flag_rules"), taxonomy, seen, "flag_rules"),
                   _flag_rules(raw.get("disposition_flag_rules"), taxonomy, seen,
                               "disposition_flag_rules"))


def rules_text(path: Path | None = None) -> str:
    """The text of a rules file (the shipped one by default)."""
    if path is not None:
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ClassifyError(f"rules: cannot read {path}: {exc}") from None
    return resources.files("cswb.classify").joinpath("rules.yaml").read_text(encoding="utf-8")


def load_rules(taxonomy: Taxonomy, path: Path | None = None) -> RuleSet:
    """Load and validate the rules (the shipped file unless ``path`` is given)."""
    text = rules_text(path)
    if path is None:
        return _shipped_rules(taxonomy, text)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClassifyError(f"rules: {path} is not valid YAML: {exc}") from None
    return parse_rules(raw, taxonomy)


@cache
def _shipped_rules(taxonomy: Taxonomy, text: str) -> RuleSet:
    return parse_rules(yaml.safe_load(text), taxonomy)


def first_category_rule(rules: RuleSet, texts: pa.Array) -> np.ndarray:
    """Index of the first category rule matching each text, or -1."""
    chosen = np.full(len(texts), -1, dtype=np.int32)
    open_rows = np.ones(len(texts), dtype=bool)
    for i, rule in enumerate(rules.category_rules):
        if not open_rows.any():
            break
        hit = pc.match_substring_regex(texts, pattern=rule.pattern)
        hit_np = hit.to_numpy(zero_copy_only=False).astype(bool)
        newly = hit_np & open_rows
        chosen[newly] = i
        open_rows &= ~newly
    return chosen


def flag_bits(flag_rules: tuple[FlagRule, ...], texts: pa.Array,
              flag_codes: tuple[str, ...]) -> np.ndarray:
    """A bit mask per text: bit ``k`` set when flag ``flag_codes[k]`` applies."""
    bits = np.zeros(len(texts), dtype=np.int64)
    if len(texts) == 0:
        return bits
    for rule in flag_rules:
        hit = pc.match_substring_regex(texts, pattern=rule.pattern)
        hit_np = hit.to_numpy(zero_copy_only=False).astype(bool)
        bits[hit_np] |= 1 << flag_codes.index(rule.flag)
    return bits
