"""The city's native CAD export: a CSV as the agency's system writes it, faults and all.

Columns (``HEADER``): incident number, four 12-hour local timestamps (``11/04/2023 6:08:26
PM``, real daylight-saving gaps and repeats), initial and final call types, priority,
disposition and call source as the CAD spells them (the spelling of priorities and dispositions
changes at a CAD upgrade part-way through), the full street address with house number and flat,
coordinates, district, beat, neighbourhood and the caller's phone number (fictional, 555-01xx).

Rows are assembled set-based with Arrow compute (dictionaries of strings taken by index and
joined), chunk by chunk, so memory stays bounded whatever the number of calls. Beside the CSV,
``<name>.faults.json`` counts every injected fault with the rows that carry it and the counts a
correct ingest must report (:func:`cswb.synth.faults.predict`); ``truth`` (optional) is a
Parquet table of every call's true category and flags.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cswb.synth.calls import ORIGINS, UNIT_STYLES, CallBatch, incident_numbers, phone_numbers
from cswb.synth.city import CHUNK_CALLS, DEFAULT_LAST_YEAR, City, span
from cswb.synth.clock import DAY, LocalClock, as_date, epoch_days
from cswb.synth.faults import (
    FAULT_NAMES,
    GARBAGE_TIMES,
    PLACEHOLDER_TIME,
    Cell,
    Coordinates,
    Outcome,
    RowCells,
    apply_faults,
    fault_index,
    predict,
)
from cswb.synth.truth import TruthWriter

HEADER: tuple[str, ...] = (
    "Incident Number", "Call Received", "Dispatched", "On Scene", "Cleared", "Initial Type",
    "Final Type", "Priority", "Disposition", "Call Source", "Address", "Latitude", "Longitude",
    "District", "Beat", "Neighborhood", "Caller Phone",
)
MAPPING_NAME = "synthetic_cad"
EOL = "\r\n"
MAX_UNIT = 60
STATE_CENTROID = ("38.498000", "-98.383000")
"""Where a failed geocode lands: the middle of the state, far outside the city."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`write_export` wrote."""

    csv_path: Path
    faults_path: Path
    truth_path: Path | None
    calls: int
    rows: int
    expected: Outcome


def csv_field(text: str) -> str:
    """A CSV field: quoted (quotes doubled) when it holds a comma, quote or line break."""
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def faults_path_for(csv_path: Path) -> Path:
    """``<name>.faults.json`` beside ``<name>.csv``."""
    return csv_path.with_name(csv_path.stem + ".faults.json")


class CadFormatter:
    """String dictionaries of the city's export, and rows built from them by index."""

    def __init__(self, city: City, clock: LocalClock, first_day: int, last_day: int) -> None:
        vocab = city.vocabulary
        self.clock = clock
        self.first_day = first_day - 3
        self.dates = pa.array([as_date(d).strftime("%m/%d/%Y")
                               for d in range(self.first_day, last_day + 4)])
        self.times = pa.array(_clock_faces())
        self.types = pa.array([csv_field(t) for t in vocab.call_types.names])
        self.priorities = pa.array([f"P{p}" for p in range(1, 5)] + [str(p) for p in range(1, 5)])
        self.dispositions = pa.array([csv_field(t) for t in vocab.dispositions.legacy_text()]
                                     + [csv_field(t) for t in vocab.dispositions.current_text()])
        self.n_dispositions = len(vocab.dispositions)
        self.origins = pa.array(list(ORIGINS))
        self.phones = pa.array(phone_numbers())
        self._places(city)

    def _places(self, city: City) -> None:
        sites = city.sites
        self.n_sites = len(sites)
        self.streets = pa.array(np.concatenate([sites.address, sites.intersection]).tolist())
        self.units = pa.array(_unit_suffixes())
        hoods = city.neighbourhoods
        tail = [f"{hoods.districts[h]},{hoods.beats[h]},{csv_field(hoods.names[h])}"
                for h in sites.neighbourhood]
        self.site_tail = pa.array(tail)
        self.site_lat = pa.array([f"{v:.6f}" for v in sites.latitude])
        self.site_lon = pa.array([f"{v:.6f}" for v in sites.longitude])
        with_coordinates = pc.binary_join_element_wise(self.site_lat, self.site_lon,
                                                       self.site_tail, ",")
        without = pc.binary_join_element_wise(",", self.site_tail, ",")
        self.blocks = pa.concat_arrays([with_coordinates, without])

    # -- columns -----------------------------------------------------------------------------

    def timestamp(self, cells: RowCells, i: int) -> pa.Array:
        """One timestamp column: wall-clock text, or what the fault put there."""
        wall, cell = cells.wall[i], cells.cell[i]
        written = (cell == Cell.VALUE) | (cell == Cell.IMPOSSIBLE)
        dates = pc.take(self.dates, pa.array(np.where(written, wall // DAY - self.first_day, 0)))
        faces = pc.take(self.times, pa.array(wall % DAY))
        text = pc.binary_join_element_wise(dates, faces, " ")
        garbage = np.flatnonzero(cell == Cell.GARBAGE)
        placeholder = np.flatnonzero(cell == Cell.PLACEHOLDER)
        impossible = np.flatnonzero(cell == Cell.IMPOSSIBLE)
        return _patch(text, [
            (garbage, pc.take(pa.array(GARBAGE_TIMES), pa.array(cells.garbage[garbage]))),
            (placeholder, _repeat(PLACEHOLDER_TIME, placeholder)),
            (impossible, self._impossible(text, impossible, cells)),
        ], empty=cell == Cell.EMPTY)

    def _impossible(self, text: pa.Array, rows: np.ndarray, cells: RowCells) -> pa.Array:
        """``01/01/1900 12:00:00 AM`` or the same day and time in 2099 (29 Feb becomes 28)."""
        if len(rows) == 0:
            return pa.array([], pa.string())
        original = pc.take(text, pa.array(rows))
        month_day = pc.replace_substring(pc.utf8_slice_codeunits(original, 0, 6), "02/29/",
                                         "02/28/")
        later = pc.binary_join_element_wise(month_day, "2099",
                                            pc.utf8_slice_codeunits(original, 10), "")
        early = pa.array(["01/01/1900 12:00:00 AM"] * len(rows))
        return pc.if_else(pa.array(cells.impossible_year[rows] == 1900), early, later)

    def call_types(self, batch: CallBatch, cells: RowCells) -> tuple[pa.Array, pa.Array]:
        initial = pc.take(self.types, pa.array(batch.initial_type, mask=cells.types_blank))
        final = pc.take(self.types, pa.array(batch.final_type,
                                             mask=cells.types_blank | batch.final_blank))
        return initial, final

    def priority(self, batch: CallBatch) -> pa.Array:
        return pc.take(self.priorities, pa.array(batch.priority.astype(np.int64) - 1
                                                 + 4 * batch.current_cad))

    def disposition(self, batch: CallBatch) -> pa.Array:
        index = batch.disposition.astype(np.int64) + self.n_dispositions * batch.current_cad
        return pc.take(self.dispositions, pa.array(index))

    def address(self, batch: CallBatch, cells: RowCells) -> pa.Array:
        """Street (or intersection) with the flat, quoted when the flat follows a comma; the
        ``too_many_fields`` rows leave that comma unquoted."""
        broken = cells.fault == fault_index("too_many_fields")
        at_corner = batch.at_intersection & ~broken
        street = pc.take(self.streets, pa.array(batch.site + self.n_sites * at_corner))
        unit = np.where(broken, np.maximum(batch.unit, 1 + batch.site % 30), batch.unit)
        style = np.where(broken, UNIT_STYLES, batch.unit_style).astype(np.int64)
        suffix = pc.take(self.units, pa.array(style * (MAX_UNIT + 1) + np.minimum(unit, MAX_UNIT)))
        quoted = (style == 1) & (unit > 0)
        opening = pc.if_else(pa.array(quoted), '"', "")
        return pc.binary_join_element_wise(opening, street, suffix, "")

    def place_block(self, batch: CallBatch, cells: RowCells) -> pa.Array:
        """Latitude, Longitude, District, Beat and Neighborhood as one text."""
        missing = cells.coordinates == Coordinates.MISSING
        block = pc.take(self.blocks, pa.array(batch.site + self.n_sites * missing))
        rows = np.flatnonzero(cells.coordinates >= Coordinates.ZERO)
        return _patch(block, [(rows, self._out_of_bounds(batch, cells, rows))])

    def _out_of_bounds(self, batch: CallBatch, cells: RowCells, rows: np.ndarray) -> pa.Array:
        site = pa.array(batch.site[rows])
        lat, lon = pc.take(self.site_lat, site), pc.take(self.site_lon, site)
        kind = cells.coordinates[rows]
        zero = pa.array(["0.000000"] * len(rows), pa.string())
        lat_text = _choose(kind, {Coordinates.ZERO: zero, Coordinates.SWAPPED: lon,
                                  Coordinates.STATE_CENTROID: _repeat(STATE_CENTROID[0], rows)},
                           lat)
        lon_text = _choose(kind, {Coordinates.ZERO: zero, Coordinates.SWAPPED: lat,
                                  Coordinates.LONGITUDE_SIGN_LOST: pc.utf8_ltrim(lon, "-"),
                                  Coordinates.STATE_CENTROID: _repeat(STATE_CENTROID[1], rows)},
                           lon)
        return pc.binary_join_element_wise(lat_text, lon_text, pc.take(self.site_tail, site), ",")

    def phone(self, batch: CallBatch, cells: RowCells) -> pa.Array:
        """Caller numbers; the ``too_many_fields`` rows always have one, so that their extra
        field is never an empty last field (which CSV readers may drop as a trailing comma)."""
        broken = cells.fault == fault_index("too_many_fields")
        index = np.where(broken & (batch.phone < 0), batch.site % len(self.phones), batch.phone)
        return pc.take(self.phones, pa.array(index.astype(np.int64), mask=index < 0))

    # -- rows --------------------------------------------------------------------------------

    def lines(self, batch: CallBatch, cells: RowCells) -> pa.Array:
        """Every row of the chunk as CSV text with its line end, in written order."""
        initial, final = self.call_types(batch, cells)
        origin = pc.take(self.origins, pa.array(batch.origin.astype(np.int64)))
        parts = [incident_numbers(batch), *(self.timestamp(cells, i) for i in range(4)),
                 initial, final, self.priority(batch), self.disposition(batch), origin,
                 self.address(batch, cells), self.place_block(batch, cells),
                 self.phone(batch, cells)]
        patches = []
        for keep in np.unique(cells.keep_fields[cells.keep_fields > 0]):
            short = np.flatnonzero(cells.keep_fields == keep)
            patches.append((short, _join([pc.take(p, pa.array(short)) for p in parts[:keep]])))
        rows = pc.binary_join_element_wise(_join(parts), EOL, "")
        patches = [(r, pc.binary_join_element_wise(v, EOL, "")) for r, v in patches]
        return _patch(rows, patches, order=cells.order)


def _join(parts: list[pa.Array]) -> pa.Array:
    return pc.binary_join_element_wise(*parts, ",", null_handling="replace",
                                       null_replacement="")


def _patch(base: pa.Array, patches: list[tuple[np.ndarray, pa.Array]],
           empty: np.ndarray | None = None, order: np.ndarray | None = None) -> pa.Array:
    """``base`` with each patch's values at its rows, nulls where ``empty``, rows taken in
    ``order`` (one take, however many patches)."""
    patches = [(rows, values) for rows, values in patches if len(rows)]
    if not patches and empty is None and order is None:
        return base
    index = np.arange(len(base), dtype=np.int64)
    start = len(base)
    for rows, _ in patches:
        index[rows] = start + np.arange(len(rows))
        start += len(rows)
    source = pa.concat_arrays([base, *(v.cast(base.type) for _, v in patches)]) \
        if patches else base
    if order is not None:
        index = index[order]
    mask = None if empty is None else (empty if order is None else empty[order])
    return pc.take(source, pa.array(index, mask=mask))


def _choose(kind: np.ndarray, choices: dict[int, pa.Array], default: pa.Array) -> pa.Array:
    result = default
    for value, array in choices.items():
        result = pc.if_else(pa.array(kind == value), array, result)
    return result


def _repeat(text: str, rows: np.ndarray) -> pa.Array:
    return pa.array([text] * len(rows), pa.string())


def _clock_faces() -> list[str]:
    """``6:08:26 PM`` for every second of a day."""
    faces = []
    for second in range(DAY):
        hour, minute, sec = second // 3600, second // 60 % 60, second % 60
        faces.append(f"{hour % 12 or 12}:{minute:02d}:{sec:02d} {'AM' if hour < 12 else 'PM'}")
    return faces


def _unit_suffixes() -> list[str]:
    """Flat suffixes by ``style * (MAX_UNIT + 1) + unit``; the last style is the broken one."""
    styles = (" APT {}", ', APT {}"', " #{}", " UNIT {}", ", APT {}")
    return [style.format(u) if u else "" for style in styles for u in range(MAX_UNIT + 1)]


# -- the whole export --------------------------------------------------------------------------


@dataclass
class _FaultLedger:
    """Rows carrying each fault and other counts kept while writing."""

    rows: dict[str, list[np.ndarray]]
    natural: Counter[str]

    @classmethod
    def empty(cls) -> _FaultLedger:
        return cls({name: [] for name in FAULT_NAMES}, Counter())

    def record(self, cells: RowCells, batch: CallBatch, first_row: int) -> np.ndarray:
        """Note the chunk's faulty rows; return each call's (first) row number."""
        position = np.empty(len(batch), dtype=np.int64)
        copies = cells.copies
        first = np.ones(len(cells.order), dtype=bool)
        first[copies] = False
        position[cells.order[first]] = np.flatnonzero(first)
        row_of_call = first_row + position + 1
        for k, name in enumerate(FAULT_NAMES):
            if name == "exact_duplicate":
                self.rows[name].append(first_row + copies + 1)
            else:
                self.rows[name].append(row_of_call[cells.fault == k])
        self.natural["calls_without_coordinates"] += int(
            (cells.coordinates == Coordinates.MISSING).sum())
        self.natural["calls_without_final_type"] += int(
            (batch.final_blank & ~cells.types_blank).sum())
        return row_of_call

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name, parts in self.rows.items():
            rows = np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
            out[name] = {"count": len(rows), "rows": rows.tolist()}
        return out


def write_export(city: City, path: Path, calls: int, *, years: int = 4,
                 last_year: int = DEFAULT_LAST_YEAR, fault_rate: float = 0.01,
                 truth_path: Path | None = None, progress: Progress | None = None,
                 chunk_calls: int = CHUNK_CALLS) -> ExportResult:
    """Write ``calls`` calls of ``city`` as a CAD export CSV at ``path`` (plus the sidecar).

    Chunks are generated in order on this thread and formatted on two worker threads (Arrow
    compute releases the GIL), then written in order; at most a few chunks are in memory.
    """
    if not 0 <= fault_rate <= 0.5:
        raise ValueError("fault_rate must be between 0 and 0.5")
    path.parent.mkdir(parents=True, exist_ok=True)
    run = _ExportRun(city, years, last_year, fault_rate, truth_path)
    with open(path, "wb") as out, ThreadPoolExecutor(max_workers=2) as pool:
        out.write((",".join(HEADER) + EOL).encode())
        pending: deque[Future[pa.Array]] = deque()
        for index, batch in enumerate(city.calls(calls, years, last_year, chunk_calls)):
            cells = run.account(index, batch)
            pending.append(pool.submit(run.formatter.lines, batch, cells))
            while len(pending) > 2:
                _write_lines(out, pending.popleft().result())
            if progress:
                progress(run.calls, calls)
        while pending:
            _write_lines(out, pending.popleft().result())
    run.close()
    faults_path = faults_path_for(path)
    faults_path.write_text(json.dumps(run.sidecar(calls), indent=1), encoding="utf-8")
    return ExportResult(path, faults_path, truth_path, calls, run.rows, run.expected)


class _ExportRun:
    """The state of one export besides the CSV: faults, expectations, ledger, truth."""

    def __init__(self, city: City, years: int, last_year: int, fault_rate: float,
                 truth_path: Path | None) -> None:
        self.city, self.fault_rate = city, fault_rate
        self.years, self.last_year = years, last_year
        self.clock = city.clock(years, last_year)
        self.formatter = _formatter(city, self.clock, years, last_year)
        self.expected, self.ledger = Outcome(), _FaultLedger.empty()
        self.truth = TruthWriter(city, truth_path) if truth_path else None
        self.rows = self.calls = 0

    def account(self, index: int, batch: CallBatch) -> RowCells:
        """Decide a chunk's faults and record what they imply; the cells to format."""
        cells = apply_faults(batch, self.clock, self.fault_rate,
                             np.random.default_rng([self.city.seed, 0xFA17, index]))
        self.expected.add(predict(cells, self.clock))
        row_of_call = self.ledger.record(cells, batch, self.rows)
        if self.truth:
            self.truth.write(batch, cells, row_of_call)
        self.rows += len(cells.order)
        self.calls += len(batch)
        return cells

    def close(self) -> None:
        if self.truth:
            self.truth.close()

    def sidecar(self, calls: int) -> dict[str, object]:
        """The content of ``<name>.faults.json``."""
        return {
            "format": 1,
            "generator": "cswb.synth",
            "mapping": MAPPING_NAME,
            "city": self.city.frame.name,
            "seed": self.city.seed,
            "calls": calls,
            "years": self.years,
            "last_year": self.last_year,
            "fault_rate": self.fault_rate,
            "rows": self.rows,
            "columns": list(HEADER),
            "faults": self.ledger.to_dict(),
            "natural": dict(self.ledger.natural),
            "expected_ingest": self.expected.to_dict(),
        }


def _formatter(city: City, clock: LocalClock, years: int, last_year: int) -> CadFormatter:
    first, last = (int(d) for d in epoch_days(*span(years, last_year))[[0, -1]])
    return CadFormatter(city, clock, first, last)


def _write_lines(out: BinaryIO, lines: pa.Array) -> None:
    """Write a string array's characters (each line already ends with EOL) in one go."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:
                                                                 lines.offset + len(lines) + 1]
    data = lines.buffers()[2]
    if data is not None and len(lines):
        out.write(memoryview(data)[int(offsets[0]):int(offsets[-1])])
