"""Erlang C (M/M/c): the fast first estimate of how many teams an hour needs.

Each hour of the week is treated as a stationary M/M/c queue with that hour's arrival rate (the
pointwise-stationary approximation). A call is *reached* when a team arrives: its wait for a free
team plus its travel. With exponential service the wait ``W`` is 0 with probability ``1 - C``
and otherwise exponential with rate ``c*mu - lambda``, so::

    P(W + T <= t) = P(T <= t) - C * E[ exp(-(c*mu - lambda) * (t - T)) ; T <= t ]

where ``T`` is travel (taken from its fitted distribution) and ``1/mu`` the mean time a team is
taken by one call (travel + on scene).
"""

from __future__ import annotations

import math

import numpy as np


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/c/c with ``load`` erlangs (stable recursion)."""
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking


def erlang_c(servers: int, load: float) -> float:
    """Probability that a call waits in M/M/c with ``load`` = lambda/mu erlangs (1 if unstable)."""
    if load <= 0:
        return 0.0
    if servers <= load:
        return 1.0
    blocking = erlang_b(servers, load)
    return servers * blocking / (servers - load * (1.0 - blocking))


def mean_wait(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean wait in queue of M/M/c, in the time unit of the rates (inf if unstable)."""
    load = arrival_rate / service_rate
    if servers <= load:
        return math.inf
    return erlang_c(servers, load) / (servers * service_rate - arrival_rate)


def share_reached(servers: int, arrival_rate: float, mean_busy: float, target: float,
                  travel_grid: np.ndarray) -> float:
    """P(wait + travel <= target) in M/M/c; rates per minute, times in minutes.

    ``travel_grid`` is an equally weighted sample of travel times (``Duration.grid``).
    """
    in_time = travel_grid <= target
    reach_by_travel = float(in_time.mean())
    if arrival_rate <= 0:
        return reach_by_travel
    load = arrival_rate * mean_busy
    if servers <= load:
        return 0.0
    decay = servers / mean_busy - arrival_rate
    slack = target - travel_grid[in_time]
    late = float(np.exp(-decay * slack).sum()) / len(travel_grid)
    return reach_by_travel - erlang_c(servers, load) * late


def teams_needed(arrival_rate: float, mean_busy: float, target: float, share: float,
                 travel_grid: np.ndarray, *, max_teams: int) -> int | None:
    """Fewest teams meeting the target in M/M/c, or None when ``max_teams`` is not enough."""
    if arrival_rate <= 0:
        return 0
    start = max(1, math.floor(arrival_rate * mean_busy) + 1)
    for servers in range(start, max_teams + 1):
        if share_reached(servers, arrival_rate, mean_busy, target, travel_grid) >= share:
            return servers
    return None
