"""The synthetic city: its ground, its people, its vocabularies and its calls for service.

``build_city(seed)`` makes the city (frame, neighbourhoods, addresses, vocabularies); its
:meth:`City.calls` yields the calls of a span of years in chunks, each a :class:`CallBatch` of
numpy arrays, generated set-based (no Python loop per call) and deterministic for a seed. Every
chunk also knows each call's truth (category, flags, underlying need), see :mod:`cswb.synth.truth`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from itertools import pairwise

import numpy as np

from cswb.synth.calls import CallBatch, CallPlan, generate_batch
from cswb.synth.clock import LocalClock, epoch_days
from cswb.synth.geography import (
    CityFrame,
    Neighbourhoods,
    Sites,
    build_neighbourhoods,
    build_sites,
)
from cswb.synth.seasonality import daily_counts
from cswb.synth.vocab import Vocabulary, load_vocabulary

DEFAULT_SITES = 60_000
DEFAULT_LAST_YEAR = 2024
CHUNK_CALLS = 500_000


@dataclass(frozen=True)
class City:
    """Everything about the city that does not change from one call to the next."""

    seed: int
    frame: CityFrame
    neighbourhoods: Neighbourhoods
    sites: Sites
    vocabulary: Vocabulary = field(repr=False)

    def calls(self, total: int, years: int = 3, last_year: int = DEFAULT_LAST_YEAR,
              chunk_calls: int = CHUNK_CALLS) -> Iterator[CallBatch]:
        """``total`` calls over ``years`` calendar years ending with ``last_year``, in time
        order, in chunks of about ``chunk_calls`` (whole local days per chunk)."""
        if total < 0 or years < 1:
            raise ValueError("total must be >= 0 and years >= 1")
        days = epoch_days(*span(years, last_year))
        counts = daily_counts(total, days, np.random.default_rng([self.seed, 0xDA75]))
        plan = CallPlan(self, self.clock(years, last_year), days,
                        upgrade_day=int(days[int(len(days) * 0.4)]))
        counters: dict[int, int] = {}
        for index, (lo, hi) in enumerate(_day_chunks(counts, chunk_calls)):
            rng = np.random.default_rng([self.seed, 0xCA11, index])
            yield generate_batch(plan, days[lo:hi], counts[lo:hi], counters, rng)


    def clock(self, years: int, last_year: int = DEFAULT_LAST_YEAR) -> LocalClock:
        """The city's clock over a span of calendar years."""
        return _clock(self.frame.time_zone, *span(years, last_year))


def span(years: int, last_year: int = DEFAULT_LAST_YEAR) -> tuple[date, date]:
    """First and last date of ``years`` calendar years ending with ``last_year``."""
    return date(last_year - years + 1, 1, 1), date(last_year, 12, 31)


@lru_cache(maxsize=8)
def _clock(zone_name: str, first: date, last: date) -> LocalClock:
    return LocalClock(zone_name, first, last)


def _day_chunks(counts: np.ndarray, chunk_calls: int) -> list[tuple[int, int]]:
    """Contiguous ranges of days holding about ``chunk_calls`` calls each."""
    bounds = [0]
    running = 0
    for i, n in enumerate(counts):
        running += int(n)
        if running >= chunk_calls:
            bounds.append(i + 1)
            running = 0
    if bounds[-1] != len(counts):
        bounds.append(len(counts))
    return list(pairwise(bounds))


def build_city(seed: int = 7, sites: int = DEFAULT_SITES) -> City:
    """The city for ``seed``: same seed, same city."""
    frame = CityFrame()
    rng = np.random.default_rng([seed, 0x6E0])
    hoods = build_neighbourhoods(frame, rng)
    return City(seed, frame, hoods, build_sites(frame, hoods, sites, rng), load_vocabulary())
