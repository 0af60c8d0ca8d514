"""Discrete-event simulation of a team answering calls, with hour-of-week arrivals and staffing.

Calls arrive as a non-stationary Poisson process whose rate changes every hour of the week
(calls per hour in ``rates``, 168 values, Monday 00:00 first). The number of teams on duty also
changes by the hour (``teams``). Calls wait first-come first-served for a free team; a team
becomes busy for travel plus on-scene time, drawn from the fitted (non-exponential) distributions.
A team on a call when its shift ends finishes the call (no pre-emption); a new call starts only
when fewer teams are busy than are on duty. A call is *reached* at start + travel.

The share reached in time is estimated by conditional Monte Carlo: each call counts
``P(travel <= target - wait)`` (from the travel distribution) instead of 0 or 1, an unbiased
estimate with far less noise, so an hour is not judged short by the luck of a few long trips.

Each replication simulates ``weeks`` weeks after one warm-up week (discarded, so the queue does
not start empty). Replications use independent streams of one seeded generator, and the same
seed gives the same arrivals and times whatever the staffing (common random numbers), so two
staffings are compared on the same calls.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from cswb.respond.service_times import ServiceTimes

HOURS_PER_WEEK = 168
WARM_UP_WEEKS = 1
Z_95 = 1.959964


@dataclass(frozen=True)
class SimulationSettings:
    """How much simulation backs an answer."""

    weeks: int = 26
    replications: int = 20
    seed: int = 1


@dataclass(frozen=True)
class Calls:
    """One replication's simulated calls (minutes from the start of the warm-up week)."""

    arrival: np.ndarray
    travel: np.ndarray
    on_scene: np.ndarray


@dataclass(frozen=True)
class SimulationResult:
    """Reach times of every simulated call after warm-up, pooled over replications."""

    target_minutes: float
    replications: int
    weeks: int
    share_by_replication: np.ndarray
    reached_by_hour: np.ndarray
    calls_by_hour: np.ndarray
    waited_by_hour: np.ndarray
    mean_wait_minutes: float
    p90_reach_minutes: float

    @property
    def share(self) -> float:
        return float(self.share_by_replication.mean())

    @property
    def interval(self) -> tuple[float, float]:
        """95 % interval of the share reached in time, across replications."""
        n = len(self.share_by_replication)
        half = Z_95 * float(self.share_by_replication.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
        return self.share - half, self.share + half

    def share_by_hour(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.calls_by_hour > 0,
                            self.reached_by_hour / np.maximum(self.calls_by_hour, 1), np.nan)


def draw_calls(rates: np.ndarray, times: ServiceTimes, weeks: int,
               rng: np.random.Generator) -> Calls:
    """Arrivals for ``weeks`` weeks (hour-of-week Poisson counts, uniform within the hour)."""
    hourly = np.tile(np.asarray(rates, dtype=float), weeks)
    counts = rng.poisson(hourly)
    starts = np.repeat(np.arange(len(hourly)) * 60.0, counts)
    arrival = np.sort(starts + rng.uniform(0.0, 60.0, len(starts)))
    n = len(arrival)
    return Calls(arrival, times.travel.sample(rng, n), times.on_scene.sample(rng, n))


def start_times(calls: Calls, teams: np.ndarray) -> np.ndarray:
    """When a team starts on each call (FIFO, ``teams[hour of week]`` on duty)."""
    on_duty = [int(t) for t in teams]
    if not any(on_duty) and len(calls.arrival):
        raise ValueError("no team is on duty in any hour of the week")
    busy_until: list[float] = []
    starts = np.empty(len(calls.arrival))
    now = 0.0
    busy_minutes = calls.travel + calls.on_scene
    for i, arrival in enumerate(calls.arrival.tolist()):
        now = max(now, arrival)
        while True:
            while busy_until and busy_until[0] <= now:
                heapq.heappop(busy_until)
            hour = int(now // 60.0)
            if len(busy_until) < on_duty[hour % HOURS_PER_WEEK]:
                break
            next_shift = (hour + 1) * 60.0
            now = min(busy_until[0], next_shift) if busy_until else next_shift
        starts[i] = now
        heapq.heappush(busy_until, now + float(busy_minutes[i]))
    return starts


def simulate(rates: np.ndarray, teams: np.ndarray, times: ServiceTimes, target_minutes: float,
             settings: SimulationSettings | None = None) -> SimulationResult:
    """Simulate ``replications`` runs of ``weeks`` weeks and pool the reach times."""
    settings = settings or SimulationSettings()
    weeks, replications = settings.weeks, settings.replications
    if len(rates) != HOURS_PER_WEEK or len(teams) != HOURS_PER_WEEK:
        raise ValueError("rates and teams need one value per hour of the week (168)")
    streams = np.random.SeedSequence(settings.seed).spawn(replications)
    reached = np.zeros(HOURS_PER_WEEK)
    calls_by_hour = np.zeros(HOURS_PER_WEEK)
    waited = np.zeros(HOURS_PER_WEEK)
    shares, waits, reaches = [], [], []
    for stream in streams:
        calls = draw_calls(rates, times, weeks + WARM_UP_WEEKS, np.random.default_rng(stream))
        starts = start_times(calls, teams)
        kept = calls.arrival >= WARM_UP_WEEKS * HOURS_PER_WEEK * 60.0
        wait = (starts - calls.arrival)[kept]
        reach = wait + calls.travel[kept]
        # conditional Monte Carlo: a call's own travel does not change its wait, so its chance
        # of being reached in time given the wait is P(travel <= target - wait), exactly
        in_time = times.travel.cdf_array(target_minutes - wait)
        hour = (calls.arrival[kept] // 60.0).astype(int) % HOURS_PER_WEEK
        calls_by_hour += np.bincount(hour, minlength=HOURS_PER_WEEK)
        reached += np.bincount(hour, weights=in_time, minlength=HOURS_PER_WEEK)
        waited += np.bincount(hour, weights=wait > 1e-9, minlength=HOURS_PER_WEEK)
        shares.append(float(in_time.mean()) if len(reach) else 1.0)
        waits.append(wait)
        reaches.append(reach)
    all_waits = np.concatenate(waits)
    all_reach = np.concatenate(reaches)
    return SimulationResult(
        target_minutes=target_minutes, replications=replications, weeks=weeks,
        share_by_replication=np.array(shares), reached_by_hour=reached,
        calls_by_hour=calls_by_hour, waited_by_hour=waited,
        mean_wait_minutes=float(all_waits.mean()) if len(all_waits) else 0.0,
        p90_reach_minutes=float(np.quantile(all_reach, 0.9)) if len(all_reach) else 0.0)
