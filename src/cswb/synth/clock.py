"""Wall-clock time in the city's IANA zone, vectorised over seconds since the epoch.

Calls happen at instants; a CAD export writes them as local wall-clock readings, so a spring
night has no 2 a.m. hour and an autumn night has two. :class:`LocalClock` renders instants as
wall-clock seconds (``wall = utc + offset``) and also reads wall-clock seconds back the way
DATA_POLICY.md says an ingest must: a time that occurs twice takes its first occurrence, a time
that does not exist moves forward by the gap. Both directions use the zone's transitions,
found once with :mod:`zoneinfo`, so converting ten million times is a ``searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

DAY = 86_400
EPOCH_DAY = np.datetime64("1970-01-01", "D")


@dataclass(frozen=True)
class Transition:
    """At ``utc`` (epoch seconds) the zone's offset changes from ``before`` to ``after``."""

    utc: int
    before: int
    after: int


def _offset(tz: ZoneInfo, seconds: int) -> int:
    delta = datetime.fromtimestamp(seconds, UTC).astimezone(tz).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def find_transitions(zone_name: str, first: date, last: date) -> list[Transition]:
    """Every offset change of the zone between two dates (a day's margin either side)."""
    tz = ZoneInfo(zone_name)
    start = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()) - DAY
    stop = int(datetime(last.year, last.month, last.day, tzinfo=UTC).timestamp()) + 2 * DAY
    found = []
    current = _offset(tz, start)
    for day_start in range(start, stop, DAY // 4):
        following = _offset(tz, day_start + DAY // 4)
        if following == current:
            continue
        low, high = day_start, day_start + DAY // 4
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if _offset(tz, middle) == current else (low, middle)
        found.append(Transition(high, current, following))
        current = following
    return found


class LocalClock:
    """Instants to wall-clock readings and back, for one zone over a span of dates."""

    def __init__(self, zone_name: str, first: date, last: date) -> None:
        self.zone_name = zone_name
        tz = ZoneInfo(zone_name)
        self.transitions = find_transitions(zone_name, first, last)
        start = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp())
        self._initial = _offset(tz, start - 2 * DAY)
        self._utc = np.array([t.utc for t in self.transitions], dtype=np.int64)
        self._after = np.array([t.after for t in self.transitions], dtype=np.int64)
        before = np.array([t.before for t in self.transitions], dtype=np.int64)
        wall_before = self._utc + before
        # A wall reading from `boundary` on uses the new offset (fold=0 for repeats, gaps moved
        # forward); readings in [win_start, win_end) are repeated (fold) or skipped (gap).
        self._boundary = wall_before + np.maximum(self._after - before, 0)
        self._win_start = np.minimum(wall_before, wall_before + self._after - before)
        self._win_end = np.maximum(wall_before, wall_before + self._after - before)
        self._is_fold = self._after < before

    def offset_at(self, utc: np.ndarray) -> np.ndarray:
        """UTC offset (seconds east) in force at each instant."""
        i = np.searchsorted(self._utc, utc, side="right")
        offsets = np.concatenate(([self._initial], self._after))
        return offsets[i]

    def wall(self, utc: np.ndarray) -> np.ndarray:
        """Wall-clock reading (seconds since 1970-01-01 00:00 local) of each instant."""
        return utc + self.offset_at(utc)

    def midnight_utc(self, days: np.ndarray) -> np.ndarray:
        """Each local date's midnight as an instant, with the offset in force at noon.

        On the two days of a year when the offset changes this is an hour off, which only
        shifts a few calls by an hour; every instant still renders to a real wall-clock time.
        """
        midnight = days.astype(np.int64) * DAY
        noon_utc = midnight + DAY // 2 - self._initial
        return midnight - self.offset_at(noon_utc)

    def read_wall(self, wall: np.ndarray) -> np.ndarray:
        """Instants an ingest following DATA_POLICY.md reads from wall-clock readings."""
        i = np.searchsorted(self._boundary, wall, side="right")
        offsets = np.concatenate(([self._initial], self._after))
        return wall - offsets[i]

    def repeated(self, wall: np.ndarray) -> np.ndarray:
        """Whether each wall-clock reading occurs twice (an autumn fall-back hour)."""
        return self._in_window(wall, self._is_fold)

    def skipped(self, wall: np.ndarray) -> np.ndarray:
        """Whether each wall-clock reading does not exist (a spring-forward hour)."""
        return self._in_window(wall, ~self._is_fold)

    def _in_window(self, wall: np.ndarray, which: np.ndarray) -> np.ndarray:
        if not which.any():
            return np.zeros(wall.shape, dtype=bool)
        starts, ends = self._win_start[which], self._win_end[which]
        i = np.searchsorted(starts, wall, side="right") - 1
        valid = i >= 0
        inside = np.zeros(wall.shape, dtype=bool)
        inside[valid] = wall[valid] < ends[i[valid]]
        return inside


def epoch_days(first: date, last: date) -> np.ndarray:
    """Local dates from ``first`` to ``last`` inclusive, as days since 1970-01-01."""
    start = (first - date(1970, 1, 1)).days
    return np.arange(start, start + (last - first).days + 1, dtype=np.int64)


def as_date(day: int) -> date:
    """Days since 1970-01-01 as a date."""
    return date(1970, 1, 1) + timedelta(days=int(day))
