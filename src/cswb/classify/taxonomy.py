"""The call taxonomy (``taxonomy.yaml``): categories, flags and the behavioural-health definition.

The taxonomy is package data so that the classifier, the docs page and the reports read one
definition. :func:`load_taxonomy` validates it and raises :class:`ClassifyError` naming the
problem, so a broken edit stops cswb with a message instead of misclassifying calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cswb.errors import ClassifyError

GROUPS = ("crime", "non-crime", "unknown")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Category:
    """One category: code, label, report group and what belongs in it."""

    code: str
    label: str
    group: str
    definition: str


@dataclass(frozen=True)
class Flag:
    """One flag, what it means and the flags it implies."""

    code: str
    definition: str
    implies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Taxonomy:
    """The whole taxonomy, versioned."""

    version: str
    source: str
    categories: tuple[Category, ...]
    flags: tuple[Flag, ...]
    bh_categories: frozenset[str]
    bh_flags: frozenset[str]
    bh_definition: str

    @property
    def category_codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.categories)

    @property
    def flag_codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.flags)

    def category(self, code: str) -> Category:
        for category in self.categories:
            if category.code == code:
                return category
        raise ClassifyError(f"unknown category {code!r} (taxonomy v{self.version})")

    def group_of(self, code: str) -> str:
        return self.category(code).group

    def implied_flags(self) -> dict[str, tuple[str, ...]]:
        return {f.code: f.implies for f in self.flags if f.implies}

    def is_bh(self, category: str, flags: list[str] | tuple[str, ...]) -> bool:
        """Whether a classification counts as behavioural health (CALL_TAXONOMY.md)."""
        return category in self.bh_categories or any(f in self.bh_flags for f in flags)


def _require(mapping: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ClassifyError(f"taxonomy: {where} has no {key!r}")
    return mapping[key]


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ClassifyError(f"taxonomy: {where} must be non-empty text")
    return " ".join(value.split())


def _categories(raw: Any) -> tuple[Category, ...]:
    if not isinstance(raw, list) or not raw:
        raise ClassifyError("taxonomy: 'categories' must be a non-empty list")
    out = []
    for i, item in enumerate(raw):
        where = f"categories[{i}]"
        code = _text(_require(item, "code", where), f"{where}.code")
        group = _text(_require(item, "group", where), f"{where}.group")
        if group not in GROUPS:
            raise ClassifyError(f"taxonomy: {where} ({code}) has group {group!r}, "
                                f"expected one of {', '.join(GROUPS)}")
        out.append(Category(code, _text(_require(item, "label", where), f"{where}.label"), group,
                            _text(_require(item, "definition", where), f"{where}.definition")))
    _unique([c.code for c in out], "category")
    if UNKNOWN not in {c.code for c in out}:
        raise ClassifyError("taxonomy: the category 'unknown' is required")
    return tuple(out)


def _flags(raw: Any) -> tuple[Flag, ...]:
    if not isinstance(raw, list):
        raise ClassifyError("taxonomy: 'flags' must be a list")
    out = []
    for i, item in enumerate(raw):
        where = f"flags[{i}]"
        code = _text(_require(item, "code", where), f"{where}.code")
        implies = item.get("implies") or []
        if not isinstance(implies, list):
            raise ClassifyError(f"taxonomy: {where} ({code}).implies must be a list")
        out.append(Flag(code, _text(_require(item, "definition", where), f"{where}.definition"),
                        tuple(str(x) for x in implies)))
    codes = [f.code for f in out]
    _unique(codes, "flag")
    for flag in out:
        for implied in flag.implies:
            if implied not in codes:
                raise ClassifyError(f"taxonomy: flag {flag.code} implies unknown flag {implied!r}")
    return tuple(out)


def _unique(codes: list[str], kind: str) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            raise ClassifyError(f"taxonomy: {kind} {code!r} is defined twice")
        seen.add(code)


def parse_taxonomy(raw: Any) -> Taxonomy:
    """Validate a parsed ``taxonomy.yaml`` document."""
    if not isinstance(raw, dict):
        raise ClassifyError("taxonomy: the document must be a mapping")
    version = _require(raw, "version", "the document")
    if not isinstance(version, str) or not version:
        raise ClassifyError("taxonomy: 'version' must be a non-empty string such as \"1\"")
    categories = _categories(_require(raw, "categories", "the document"))
    flags = _flags(_require(raw, "flags", "the document"))
    bh = _require(raw, "behavioral_health", "the document")
    bh_categories = frozenset(_require(bh, "categories", "behavioral_health"))
    bh_flags = frozenset(_require(bh, "flags", "behavioral_health"))
    unknown = (bh_categories - {c.code for c in categories}) | (bh_flags - {f.code for f in flags})
    if unknown:
        raise ClassifyError(f"taxonomy: behavioral_health names unknown codes {sorted(unknown)}")
    return Taxonomy(version, _text(raw.get("source", "cswb"), "source"), categories, flags,
                    bh_categories, bh_flags,
                    _text(_require(bh, "definition", "behavioral_health"), "bh definition"))


def read_taxonomy(path: Path) -> Taxonomy:
    """Load and validate a taxonomy file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ClassifyError(f"taxonomy: cannot read {path}: {exc}") from None
    return parse_taxonomy(raw)


def taxonomy_text() -> str:
    """The shipped taxonomy file's text (part of the classifier's version)."""
    return resources.files("cswb.classify").joinpath("taxonomy.yaml").read_text(encoding="utf-8")


@cache
def load_taxonomy() -> Taxonomy:
    """The taxonomy shipped with cswb."""
    return parse_taxonomy(yaml.safe_load(taxonomy_text()))
