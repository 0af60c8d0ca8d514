"""One chunk of calls for service, drawn set-based with numpy.

For each call, in this order: its date (given), its call type jointly with its underlying need
(none, mental health, substance use), its hour from the family's hour profile, its received
instant; then, in time order, its priority, origin, disposition, the times it was dispatched,
attended and cleared, what the call-taker first typed, where it was and who called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cswb.synth.clock import DAY, LocalClock
from cswb.synth.seasonality import hour_weights, weekday
from cswb.synth.vocab import TIMELINES

if TYPE_CHECKING:
    from cswb.synth.city import City

NO_TIME = np.iinfo(np.int64).min
"""Sentinel of a timestamp the call does not have."""

ORIGINS: tuple[str, ...] = ("911", "TELEPHONE", "ONVIEW", "ALARM COMPANY", "TEXT TO 911",
                            "WALK-IN")
ONVIEW = ORIGINS.index("ONVIEW")
CALLER_ORIGINS = np.array([o in {"911", "TELEPHONE", "ALARM COMPANY", "TEXT TO 911"}
                           for o in ORIGINS])

ORIGIN_PROFILES: dict[str, tuple[float, ...]] = {
    "onview": (0.0, 0.03, 0.97, 0.0, 0.0, 0.0),
    "patrol": (0.0, 0.18, 0.82, 0.0, 0.0, 0.0),
    "public": (0.52, 0.40, 0.04, 0.0, 0.01, 0.03),
    "emergency": (0.80, 0.16, 0.03, 0.0, 0.01, 0.0),
    "alarm": (0.04, 0.08, 0.0, 0.88, 0.0, 0.0),
    "report": (0.20, 0.60, 0.05, 0.0, 0.0, 0.15),
    "warrant": (0.0, 0.40, 0.60, 0.0, 0.0, 0.0),
    "call911": (1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
}
"""Share of each origin, in the order of ORIGINS."""

QUEUE_MEDIAN_S = np.array([0, 45, 150, 480, 1200], dtype=np.float64)
TRAVEL_MEDIAN_S = np.array([0, 240, 330, 450, 540], dtype=np.float64)
PHONE_AREA_CODES = ("785", "620", "316")
UNIT_STYLES = 4
"""Unit designators: `` APT 12``, ``, APT 12``, `` #12``, `` UNIT 12``."""


@dataclass(frozen=True)
class CallPlan:
    """What every chunk of one run shares: the city, its clock, the dates and the CAD upgrade."""

    city: City
    clock: LocalClock
    days: np.ndarray
    upgrade_day: int


@dataclass
class CallBatch:
    """Calls as parallel numpy arrays, in time order. Times are epoch seconds (UTC)."""

    year: np.ndarray
    sequence: np.ndarray
    received: np.ndarray
    dispatched: np.ndarray
    arrived: np.ndarray
    cleared: np.ndarray
    final_type: np.ndarray
    initial_type: np.ndarray
    final_blank: np.ndarray
    need: np.ndarray
    priority: np.ndarray
    disposition: np.ndarray
    origin: np.ndarray
    site: np.ndarray
    at_intersection: np.ndarray
    unit: np.ndarray
    unit_style: np.ndarray
    geocoded: np.ndarray
    phone: np.ndarray
    current_cad: np.ndarray

    def __len__(self) -> int:
        return len(self.received)


def generate_batch(plan: CallPlan, days: np.ndarray, counts: np.ndarray,
                   counters: dict[int, int], rng: np.random.Generator) -> CallBatch:
    """The calls of consecutive ``days`` (``counts`` per day), numbered after ``counters``."""
    vocab = plan.city.vocabulary
    day = np.repeat(days, counts)
    final_type, need = _types_and_needs(vocab.call_types.weights, len(day), rng)
    family = vocab.call_types.family[final_type]
    local_second = _hours(plan, family, day, rng) * 3600 + rng.integers(0, 3600, len(day))
    received = plan.clock.midnight_utc(day) + local_second
    order = np.argsort(received, kind="stable")
    received, final_type, need, family = received[order], final_type[order], need[order], \
        family[order]
    origin = _origins(plan, family, rng)
    priority = _priorities(vocab.call_types.priority[final_type], origin, rng)
    disposition = _dispositions(vocab.dispositions.mix, family, rng)
    times = _times(plan, received, rng, family=family, priority=priority,
                   disposition=disposition, origin=origin)
    site, at_intersection = _places(plan, family, rng)
    unit, unit_style = _units(plan.city.sites.units[site], at_intersection, rng)
    year, sequence = _numbers(plan.clock, received, counters)
    timeline = vocab.dispositions.timeline[disposition]
    return CallBatch(
        year=year, sequence=sequence, received=received, dispatched=times[0], arrived=times[1],
        cleared=times[2], final_type=final_type.astype(np.int16),
        initial_type=_initial_types(plan, final_type, family, rng),
        final_blank=(timeline == TIMELINES.index("cancelled")) & (rng.random(len(day)) < 0.6),
        need=need, priority=priority, disposition=disposition, origin=origin, site=site,
        at_intersection=at_intersection, unit=unit, unit_style=unit_style,
        geocoded=rng.random(len(day)) >= 0.004,
        phone=_phones(origin, rng),
        current_cad=plan.clock.wall(received) >= plan.upgrade_day * DAY,
    )


def _types_and_needs(weights: np.ndarray, n: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw (call type, need) pairs jointly from the vocabulary's weight matrix."""
    flat = weights.ravel()
    cell = rng.choice(len(flat), size=n, p=flat / flat.sum())
    return (cell // weights.shape[1]).astype(np.int64), (cell % weights.shape[1]).astype(np.int8)


def _hours(plan: CallPlan, family: np.ndarray, day: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """Local hour of each call from its family's hour profile, weekday or weekend."""
    families = plan.city.vocabulary.families
    profile_of = np.array([sorted(set(families.hour_profile)).index(p)
                           for p in families.hour_profile])
    profile = profile_of[family]
    weekend = weekday(day) >= 5
    hours = np.empty(len(day), dtype=np.int64)
    for k, name in enumerate(sorted(set(families.hour_profile))):
        for is_weekend in (False, True):
            mask = (profile == k) & (weekend == is_weekend)
            hours[mask] = rng.choice(24, size=int(mask.sum()), p=hour_weights(name, is_weekend))
    return hours


def _origins(plan: CallPlan, family: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    families = plan.city.vocabulary.families
    origin = np.empty(len(family), dtype=np.int8)
    for f, profile in enumerate(families.origin_profile):
        mask = family == f
        shares = np.array(ORIGIN_PROFILES[profile])
        origin[mask] = rng.choice(len(ORIGINS), size=int(mask.sum()), p=shares / shares.sum())
    return origin


def _priorities(base: np.ndarray, origin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The type's usual priority, moved one step either way on some calls (not on-view)."""
    shift = rng.choice([-1, 0, 1], size=len(base), p=[0.06, 0.88, 0.06])
    shift[origin == ONVIEW] = 0
    return np.clip(base + shift, 1, 4).astype(np.int8)


def _dispositions(mix: np.ndarray, family: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    disposition = np.empty(len(family), dtype=np.int16)
    for f in range(mix.shape[0]):
        mask = family == f
        disposition[mask] = rng.choice(mix.shape[1], size=int(mask.sum()),
                                       p=mix[f] / mix[f].sum())
    return disposition


def _lognormal(median: np.ndarray | float, sigma: np.ndarray | float, n: int,
               rng: np.random.Generator) -> np.ndarray:
    return np.asarray(median) * np.exp(np.asarray(sigma) * rng.standard_normal(n))


def _times(plan: CallPlan, received: np.ndarray, rng: np.random.Generator, *,
           family: np.ndarray, priority: np.ndarray, disposition: np.ndarray,
           origin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dispatched, arrived and cleared instants (NO_TIME where the call has none)."""
    n = len(received)
    vocab = plan.city.vocabulary
    hour = (plan.clock.wall(received) // 3600) % 24
    load = 0.6 + 0.8 * hour_weights("general", False)[hour] / hour_weights("general", False).max()
    onview = origin == ONVIEW
    queue = np.where(onview, rng.integers(0, 20, n),
                     _lognormal(QUEUE_MEDIAN_S[priority] * load, 0.9, n, rng))
    travel = np.where(onview, rng.integers(0, 40, n),
                      _lognormal(TRAVEL_MEDIAN_S[priority], 0.55, n, rng))
    on_scene = _lognormal(vocab.families.on_scene_minutes[family] * 60.0
                          * vocab.dispositions.on_scene_factor[disposition],
                          vocab.families.on_scene_sigma[family], n, rng)
    dispatched = received + np.round(queue).astype(np.int64)
    arrived = dispatched + np.round(travel).astype(np.int64)
    cleared = arrived + np.maximum(np.round(on_scene).astype(np.int64), 60)
    timeline = vocab.dispositions.timeline[disposition]
    phone = timeline == TIMELINES.index("phone")
    cancelled = timeline == TIMELINES.index("cancelled")
    brief = np.round(_lognormal(360.0, 0.7, n, rng)).astype(np.int64) + 30
    report = np.round(_lognormal(1500.0, 0.6, n, rng)).astype(np.int64) + 120
    never_sent = cancelled & (rng.random(n) < 0.5)
    cleared = np.where(phone, received + report, cleared)
    cleared = np.where(cancelled, np.where(never_sent, received, dispatched) + brief, cleared)
    dispatched = np.where(phone | never_sent, NO_TIME, dispatched)
    unrecorded = rng.random(n) < 0.03
    arrived = np.where(phone | cancelled | unrecorded, NO_TIME, arrived)
    return dispatched, arrived, cleared


def _initial_types(plan: CallPlan, final_type: np.ndarray, family: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """What the call-taker first typed: usually the final type, sometimes another of its
    family or a vague type (``UNKNOWN TROUBLE``, ``TRBL W/SUBJ``...)."""
    types = plan.city.vocabulary.call_types
    families = plan.city.vocabulary.families
    initial = final_type.astype(np.int16)
    changed = rng.random(len(final_type)) < families.reclass_share[family]
    vague = changed & (rng.random(len(final_type)) < 0.45)
    total = types.weights.sum(axis=1)
    pool = np.flatnonzero(types.vague)
    initial[vague] = rng.choice(pool, size=int(vague.sum()), p=total[pool] / total[pool].sum())
    for f in range(len(families.names)):
        mask = changed & ~vague & (family == f)
        members = np.flatnonzero(types.family == f)
        initial[mask] = rng.choice(members, size=int(mask.sum()),
                                   p=total[members] / total[members].sum())
    return initial


def _places(plan: CallPlan, family: np.ndarray,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each call's address (heavy-tailed repeat addresses) and whether it is an intersection."""
    sites = plan.city.sites
    families = plan.city.vocabulary.families
    n = len(family)
    commercial = rng.random(n) < families.commercial_share[family]
    site = np.empty(n, dtype=np.int32)
    for wanted in (False, True):
        pool = np.flatnonzero(sites.commercial) if wanted else np.arange(len(sites))
        mask = commercial == wanted
        weights = sites.weight[pool]
        site[mask] = rng.choice(pool, size=int(mask.sum()), p=weights / weights.sum())
    at_intersection = rng.random(n) < families.intersection_share[family]
    return site, at_intersection


def _units(units: np.ndarray, at_intersection: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A flat number for calls to multi-unit buildings (0 for none), and how it is written."""
    n = len(units)
    has_unit = (units > 0) & ~at_intersection & (rng.random(n) < 0.8)
    unit = np.where(has_unit, (rng.random(n) * np.maximum(units, 1)).astype(np.int16) + 1, 0)
    style = rng.choice(UNIT_STYLES, size=n, p=[0.5, 0.2, 0.15, 0.15]).astype(np.int8)
    return unit.astype(np.int16), style


def _phones(origin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Index of the (fictional, 555-01xx) caller number, -1 when there is no caller."""
    n = len(origin)
    present = CALLER_ORIGINS[origin] & (rng.random(n) < 0.93)
    return np.where(present, rng.integers(0, 100 * len(PHONE_AREA_CODES), n), -1).astype(
        np.int16)


def incident_numbers(batch: CallBatch) -> pa.Array:
    """The CAD's incident numbers: ``P23-0451234`` (year, then the call's number that year)."""
    years = pc.cast(pa.array(batch.year.astype(np.int64) % 100), pa.string())
    prefix = pc.binary_join_element_wise("P", pc.utf8_lpad(years, 2, "0"), "")
    sequence = pc.utf8_lpad(pc.cast(pa.array(batch.sequence), pa.string()), 7, "0")
    return pc.binary_join_element_wise(prefix, sequence, "-")


def phone_numbers() -> list[str]:
    """Every caller number the city uses, by index."""
    return [f"{area}-555-01{k:02d}" for area in PHONE_AREA_CODES for k in range(100)]


def _numbers(clock: LocalClock, received: np.ndarray,
             counters: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Incident year and sequence within the year, continuing ``counters`` (updated)."""
    wall_days = clock.wall(received) // DAY
    year = (np.datetime64("1970-01-01", "D") + wall_days.astype("timedelta64[D]")).astype(
        "datetime64[Y]").astype(np.int64) + 1970
    sequence = np.empty(len(received), dtype=np.int64)
    for y in np.unique(year):
        mask = year == y
        start = counters.get(int(y), 0)
        sequence[mask] = start + 1 + np.arange(int(mask.sum()))
        counters[int(y)] = start + int(mask.sum())
    return year.astype(np.int16), sequence
