"""Faulty rows of the kinds real CAD exports have, and what an ingest must make of them.

About ``rate`` of the rows of an export are faulty, each with exactly one fault (``FAULTS``).
:func:`apply_faults` decides, for a chunk of calls, what each timestamp cell will hold (a
wall-clock time, nothing, garbage, a placeholder or an impossible date), which rows lose their
call types, break the CSV structure, carry impossible coordinates or are written twice.

:func:`predict` then works out, from those cells alone and the rules of DATA_POLICY.md, what a
correct ingest through the ``synthetic_cad`` mapping reports: rows read, stored, quarantined
(by reason), duplicates, flagged calls and the count of each ``field:problem``. That includes
the flags real data earns without any fault: times in an autumn fall-back hour are ambiguous
(the first occurrence is taken), which can also put a later time before an earlier one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from cswb.synth.calls import NO_TIME, CallBatch
from cswb.synth.clock import DAY, LocalClock

FAULTS: dict[str, float] = {
    "no_usable_time": 0.10,
    "unparseable_received_time": 0.08,
    "empty_call_type": 0.12,
    "too_many_fields": 0.06,
    "too_few_fields": 0.04,
    "exact_duplicate": 0.20,
    "arrived_before_received": 0.12,
    "coordinates_out_of_bounds": 0.10,
    "impossible_date": 0.08,
    "placeholder_time": 0.10,
}
"""Every fault kind and its share of the faulty rows."""

FAULT_NAMES: tuple[str, ...] = tuple(FAULTS)
TIME_FIELDS: tuple[str, ...] = ("received_at", "dispatched_at", "arrived_at", "cleared_at")
TIME_PROBLEMS: tuple[str, ...] = ("placeholder", "unparseable", "impossible_date",
                                  "ambiguous_local_time", "nonexistent_local_time",
                                  "out_of_order")
GARBAGE_TIMES: tuple[str, ...] = ("##########", "PENDING", "ERROR", "?", "TIME NOT SET",
                                  "13/32/2023 9:61:00 AM", "0")
"""Values a broken export writes in a time column (none parses, none is a declared null)."""
PLACEHOLDER_TIME = "00/00/0000 00:00:00"
"""The export's 'not recorded' time, declared as a placeholder in the mapping."""


class Cell(IntEnum):
    """What a timestamp cell of the export holds."""

    VALUE = 0
    EMPTY = 1
    GARBAGE = 2
    PLACEHOLDER = 3
    IMPOSSIBLE = 4


class Coordinates(IntEnum):
    """What the coordinate cells hold."""

    SITE = 0
    MISSING = 1
    ZERO = 2
    LONGITUDE_SIGN_LOST = 3
    SWAPPED = 4
    STATE_CENTROID = 5


def fault_index(name: str) -> int:
    return FAULT_NAMES.index(name)


@dataclass
class RowCells:
    """The cells of one chunk's rows, one column per call, before duplicates are added."""

    wall: np.ndarray
    cell: np.ndarray
    impossible_year: np.ndarray
    garbage: np.ndarray
    fault: np.ndarray
    types_blank: np.ndarray
    coordinates: np.ndarray
    keep_fields: np.ndarray
    order: np.ndarray

    @property
    def copies(self) -> np.ndarray:
        """Positions in :attr:`order` that repeat an earlier row."""
        first = np.zeros(len(self.order), dtype=bool)
        _, where = np.unique(self.order, return_index=True)
        first[where] = True
        return np.flatnonzero(~first)


def choose_faults(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Fault index of each of ``n`` calls (-1 for none), about ``rate * n`` of them faulty."""
    fault = np.full(n, -1, dtype=np.int8)
    faulty = round(rate * n)
    if faulty == 0:
        return fault
    shares = np.array(list(FAULTS.values()))
    counts = rng.multinomial(faulty, shares / shares.sum())
    rows = rng.permutation(n)[:faulty]
    fault[rows] = np.repeat(np.arange(len(FAULTS)), counts).astype(np.int8)
    return fault


def apply_faults(batch: CallBatch, clock: LocalClock, rate: float,
                 rng: np.random.Generator) -> RowCells:
    """Decide every row's cells for a chunk of calls."""
    n = len(batch)
    fault = choose_faults(n, rate, rng)
    times = np.stack([batch.received, batch.dispatched, batch.arrived, batch.cleared])
    present = times != NO_TIME
    is_ = {name: fault == fault_index(name) for name in FAULT_NAMES}
    back = rng.integers(120, 5400, n)
    times[2] = np.where(is_["arrived_before_received"], batch.received - back, times[2])
    present[2] |= is_["arrived_before_received"]
    wall = np.where(present, clock.wall(np.where(present, times, 0)), 0)
    cell = np.where(present, Cell.VALUE, Cell.EMPTY).astype(np.int8)
    _time_faults(cell, is_, rng)
    return RowCells(
        wall=wall,
        cell=cell,
        impossible_year=np.where(rng.random(n) < 0.5, 1900, 2099).astype(np.int16),
        garbage=rng.integers(0, len(GARBAGE_TIMES), n).astype(np.int8),
        fault=fault,
        types_blank=is_["empty_call_type"],
        coordinates=_coordinates(batch, is_["coordinates_out_of_bounds"], rng),
        keep_fields=np.where(is_["too_few_fields"], rng.integers(2, 10, n), 0).astype(np.int8),
        order=_written_order(np.flatnonzero(is_["exact_duplicate"]), n, rng),
    )


def _time_faults(cell: np.ndarray, is_: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    n = cell.shape[1]
    no_time = is_["no_usable_time"]
    cell[:, no_time] = Cell.EMPTY
    cell[0, no_time & (rng.random(n) < 0.5)] = Cell.GARBAGE
    cell[0, is_["unparseable_received_time"]] = Cell.GARBAGE
    impossible_field = np.where(rng.random(n) < 0.7, 0, 3)
    rows = np.flatnonzero(is_["impossible_date"])
    cell[impossible_field[rows], rows] = Cell.IMPOSSIBLE
    placeholder_field = np.asarray(rng.choice(4, size=n, p=[0.15, 0.3, 0.3, 0.25]))
    rows = np.flatnonzero(is_["placeholder_time"])
    cell[placeholder_field[rows], rows] = Cell.PLACEHOLDER


def _coordinates(batch: CallBatch, out_of_bounds: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    kind = np.where(batch.geocoded, Coordinates.SITE, Coordinates.MISSING).astype(np.int8)
    variant = rng.integers(Coordinates.ZERO, Coordinates.STATE_CENTROID + 1, len(batch))
    return np.where(out_of_bounds, variant, kind).astype(np.int8)


def _written_order(sources: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Row order with each duplicated call written again a little later."""
    later = np.minimum(sources + rng.integers(1, 2_000, len(sources)), n)
    return np.insert(np.arange(n), later, sources)


# -- what a correct ingest reports ----------------------------------------------------------


@dataclass
class Outcome:
    """Counts an ingest of the export must report (same names as its batch summary)."""

    rows_read: int = 0
    inserted: int = 0
    duplicate: int = 0
    quarantined: int = 0
    flagged: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)

    def add(self, other: Outcome) -> None:
        for name in ("rows_read", "inserted", "duplicate", "quarantined", "flagged"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.reasons.update(other.reasons)
        self.problems.update(other.problems)

    def to_dict(self) -> dict[str, object]:
        return {"rows_read": self.rows_read, "inserted": self.inserted,
                "duplicate": self.duplicate, "quarantined": self.quarantined,
                "flagged": self.flagged, "reasons": dict(sorted(self.reasons.items())),
                "problems": dict(sorted(self.problems.items()))}


def predict(cells: RowCells, clock: LocalClock) -> Outcome:
    """What an ingest following DATA_POLICY.md reports for a chunk's rows."""
    problems = _time_problems(cells, clock)
    oob = cells.coordinates >= Coordinates.ZERO
    problems["latitude:out_of_bounds"] = oob
    problems["longitude:out_of_bounds"] = oob
    usable = (cells.cell == Cell.VALUE).any(axis=0)
    reason = np.full(len(cells.fault), "", dtype=object)
    reason[cells.types_blank] = "no_call_type"
    reason[~usable] = "no_usable_time"
    reason[cells.fault == fault_index("too_few_fields")] = "missing_columns"
    reason[cells.fault == fault_index("too_many_fields")] = "too_many_columns"
    stored = reason == ""
    outcome = Outcome(rows_read=len(cells.order), duplicate=len(cells.copies))
    outcome.inserted = int(stored.sum())
    outcome.quarantined = int((~stored).sum())
    outcome.reasons.update(Counter(reason[~stored].tolist()))
    any_problem = np.zeros(len(stored), dtype=bool)
    for key, mask in problems.items():
        hits = int((mask & stored).sum())
        if hits:
            outcome.problems[key] = hits
        any_problem |= mask
    outcome.flagged = int((any_problem & stored).sum())
    return outcome


def _time_problems(cells: RowCells, clock: LocalClock) -> dict[str, np.ndarray]:
    """``field:problem`` masks of the four timestamps, order checks included."""
    found: dict[str, np.ndarray] = {}
    valid = cells.cell == Cell.VALUE
    for i, name in enumerate(TIME_FIELDS):
        found[f"{name}:placeholder"] = cells.cell[i] == Cell.PLACEHOLDER
        found[f"{name}:unparseable"] = cells.cell[i] == Cell.GARBAGE
        found[f"{name}:impossible_date"] = cells.cell[i] == Cell.IMPOSSIBLE
        found[f"{name}:ambiguous_local_time"] = valid[i] & clock.repeated(cells.wall[i])
        found[f"{name}:nonexistent_local_time"] = valid[i] & clock.skipped(cells.wall[i])
    utc = np.where(valid, clock.read_wall(cells.wall), NO_TIME)
    latest = np.where(valid[0], utc[0], NO_TIME)
    for i, name in enumerate(TIME_FIELDS[1:], start=1):
        early = valid[i] & (utc[i] < latest)
        found[f"{name}:out_of_order"] = early
        latest = np.maximum(latest, np.where(valid[i] & ~early, utc[i], NO_TIME))
    return found


def wall_dates(wall: np.ndarray) -> np.ndarray:
    """Local dates (days since 1970-01-01) of wall-clock seconds."""
    return wall // DAY
