"""The synthetic city's vocabularies: call types, families, dispositions (package data).

``vocab/call_types.csv`` lists every call type the city's CAD uses, in the mixed styles real
CAD systems have (``TRBL W/SUBJ``, ``121C_Mental Disordr NonViolent``, ``--CRISIS COMPLAINT -
GENERAL``...), each with its ground-truth category and flags (codes of CALL_TAXONOMY.md), its
family (which drives dispositions, times and places), its usual priority and three volume
weights: calls with no behavioural-health need, calls driven by a mental-health need and calls
driven by a substance-use need filed under this type. ``families.csv``, ``dispositions.csv`` and
``disposition_mix.csv`` give each family's timing, origin, places and outcomes.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from cswb.domain.vocab import DispositionGroup

TAXONOMY_CATEGORIES: tuple[str, ...] = (
    "violent_crime", "other_crime", "property_crime", "sex_offense", "domestic_violence",
    "drugs", "liquor", "warrant", "status_offense", "suspicion", "complaint",
    "behavioral_health", "medical", "fire", "missing_person", "assist_public", "traffic",
    "alarm", "officer_needs_help", "officer_status", "call_issue", "other_noncrime", "unknown",
)
"""Category codes of CALL_TAXONOMY.md (v1)."""

TAXONOMY_FLAGS: tuple[str, ...] = (
    "mental_health", "suicide", "substance_use", "welfare", "homelessness", "domestic",
    "youth", "weapon", "violence", "in_progress", "officer_initiated",
)
"""Flag codes of CALL_TAXONOMY.md (v1)."""

NEEDS: tuple[str, ...] = ("none", "mental_health", "substance_use")
"""The underlying need behind a call; the weight columns of call_types.csv follow this order."""

TIMELINES: tuple[str, ...] = ("full", "phone", "cancelled")
"""How a disposition shapes a call's timestamps: dispatched and attended, handled by
telephone (never dispatched), or cancelled (maybe dispatched, never attended)."""


@dataclass(frozen=True)
class Families:
    """Call-type families: timing, origin, places (one entry per family)."""

    names: tuple[str, ...]
    hour_profile: tuple[str, ...]
    origin_profile: tuple[str, ...]
    on_scene_minutes: np.ndarray
    on_scene_sigma: np.ndarray
    reclass_share: np.ndarray
    commercial_share: np.ndarray
    intersection_share: np.ndarray

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclass(frozen=True)
class CallTypes:
    """Every call type of the city's CAD with its truth and volume weights."""

    names: tuple[str, ...]
    family: np.ndarray
    category: tuple[str, ...]
    flags: tuple[tuple[str, ...], ...]
    priority: np.ndarray
    weights: np.ndarray
    vague: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Dispositions:
    """Disposition codes, their group and timeline, and each family's mix of them."""

    codes: tuple[str, ...]
    descriptions: tuple[str, ...]
    group: tuple[str, ...]
    timeline: np.ndarray
    on_scene_factor: np.ndarray
    mix: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    def legacy_text(self) -> list[str]:
        """How the old CAD wrote each disposition: ``ADV - ADVISED``."""
        return [f"{c} - {d}" for c, d in zip(self.codes, self.descriptions, strict=True)]

    def current_text(self) -> list[str]:
        """How the new CAD writes each disposition: ``Advised``."""
        return [d.title() for d in self.descriptions]


@dataclass(frozen=True)
class Vocabulary:
    """The three vocabularies together."""

    call_types: CallTypes
    families: Families
    dispositions: Dispositions


def _rows(name: str) -> list[dict[str, str]]:
    text = (resources.files("cswb.synth") / "vocab" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _floats(rows: list[dict[str, str]], column: str) -> np.ndarray:
    return np.array([float(r[column]) for r in rows], dtype=np.float64)


def load_families() -> Families:
    """``families.csv``."""
    rows = _rows("families.csv")
    return Families(
        names=tuple(r["family"] for r in rows),
        hour_profile=tuple(r["hour_profile"] for r in rows),
        origin_profile=tuple(r["origin_profile"] for r in rows),
        on_scene_minutes=_floats(rows, "on_scene_minutes"),
        on_scene_sigma=_floats(rows, "on_scene_sigma"),
        reclass_share=_floats(rows, "reclass_share"),
        commercial_share=_floats(rows, "commercial_share"),
        intersection_share=_floats(rows, "intersection_share"),
    )


def load_call_types(families: Families) -> CallTypes:
    """``call_types.csv``, checked against the taxonomy's codes."""
    rows = _rows("call_types.csv")
    for row in rows:
        _check_call_type(row, families)
    return CallTypes(
        names=tuple(r["call_type"] for r in rows),
        family=np.array([families.index(r["family"]) for r in rows], dtype=np.int16),
        category=tuple(r["category"] for r in rows),
        flags=tuple(tuple(f for f in r["flags"].split(";") if f) for r in rows),
        priority=np.array([int(r["priority"]) for r in rows], dtype=np.int8),
        weights=np.stack([_floats(rows, c) for c in ("weight", "mh_weight", "su_weight")],
                         axis=1),
        vague=np.array([r["vague"] == "1" for r in rows], dtype=bool),
    )


def _check_call_type(row: dict[str, str], families: Families) -> None:
    name = row["call_type"]
    if row["category"] not in TAXONOMY_CATEGORIES:
        raise ValueError(f"call type {name!r}: unknown category {row['category']!r}")
    unknown = [f for f in row["flags"].split(";") if f and f not in TAXONOMY_FLAGS]
    if unknown:
        raise ValueError(f"call type {name!r}: unknown flags {unknown}")
    if row["family"] not in families.names:
        raise ValueError(f"call type {name!r}: unknown family {row['family']!r}")


def load_dispositions(families: Families) -> Dispositions:
    """``dispositions.csv`` and ``disposition_mix.csv``."""
    rows = _rows("dispositions.csv")
    codes = tuple(r["code"] for r in rows)
    groups = {g.value for g in DispositionGroup}
    for row in rows:
        if row["group"] not in groups:
            raise ValueError(f"disposition {row['code']}: unknown group {row['group']!r}")
    mix = np.zeros((len(families.names), len(codes)), dtype=np.float64)
    for row in _rows("disposition_mix.csv"):
        mix[families.index(row["family"]), codes.index(row["code"])] = float(row["weight"])
    empty = [families.names[i] for i in np.flatnonzero(mix.sum(axis=1) == 0)]
    if empty:
        raise ValueError(f"families without dispositions: {empty}")
    return Dispositions(
        codes=codes,
        descriptions=tuple(r["description"] for r in rows),
        group=tuple(r["group"] for r in rows),
        timeline=np.array([TIMELINES.index(r["timeline"]) for r in rows], dtype=np.int8),
        on_scene_factor=_floats(rows, "on_scene_factor"),
        mix=mix,
    )


@cache
def load_vocabulary() -> Vocabulary:
    """The city's vocabularies (read once)."""
    families = load_families()
    return Vocabulary(load_call_types(families), families, load_dispositions(families))
