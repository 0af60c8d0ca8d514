"""The native CAD export: schema, formats, fault sidecar and truth, read back independently."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from cswb.ingest.mapping import builtin_mapping
from cswb.synth import build_city, write_export
from cswb.synth.export import HEADER
from cswb.synth.faults import FAULTS, PLACEHOLDER_TIME
from cswb.synth.geography import CityFrame

TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
TIME_TEXT = re.compile(r"^(0[1-9]|1[0-2])/[0-3][0-9]/[0-9]{4} ([1-9]|1[0-2]):[0-5][0-9]:[0-5][0-9]"
                       r" (AM|PM)$")
PHONE = re.compile(r"^[0-9]{3}-555-01[0-9]{2}$")
TIMES = slice(1, 5)
CALLS = 50_000


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A 50,000-call export with truth, and its rows as read by Python's csv module."""
    folder = tmp_path_factory.mktemp("export")
    path = folder / "calls.csv"
    result = write_export(build_city(3), path, CALLS, years=3, truth_path=folder / "truth.parquet")
    raw = path.read_bytes().decode("utf-8").split("\r\n")
    assert raw[-1] == ""
    with open(path, newline="", encoding="utf-8") as handle:
        records = list(csv.reader(handle))
    return {"result": result, "header": records[0], "rows": records[1:], "lines": raw[1:-1],
            "sidecar": json.loads(result.faults_path.read_text()),
            "truth": pq.read_table(folder / "truth.parquet")}


def _time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, TIME_FORMAT)
    except ValueError:
        return None


def _faulty_rows(sidecar: dict, kind: str) -> list[int]:
    return sidecar["faults"][kind]["rows"]


def test_header_and_row_count(export: dict) -> None:
    assert tuple(export["header"]) == HEADER
    assert len(export["rows"]) == len(export["lines"]) == export["sidecar"]["rows"]
    assert export["sidecar"]["calls"] == CALLS


def test_about_one_percent_of_rows_are_faulty_of_every_kind(export: dict) -> None:
    counts = {k: v["count"] for k, v in export["sidecar"]["faults"].items()}
    assert set(counts) == set(FAULTS)
    assert all(n > 0 for n in counts.values()), counts
    assert 0.008 * CALLS < sum(counts.values()) < 0.012 * CALLS


def test_every_listed_fault_is_in_the_file(export: dict) -> None:
    rows, sidecar = export["rows"], export["sidecar"]

    def row(n: int) -> list[str]:
        return rows[n - 1]

    for n in _faulty_rows(sidecar, "no_usable_time"):
        assert all(_time(v) is None for v in row(n)[TIMES])
    for n in _faulty_rows(sidecar, "unparseable_received_time"):
        assert row(n)[1] and _time(row(n)[1]) is None
        assert any(_time(v) for v in row(n)[2:5])
    for n in _faulty_rows(sidecar, "empty_call_type"):
        assert row(n)[5] == row(n)[6] == ""
    for n in _faulty_rows(sidecar, "too_many_fields"):
        assert len(row(n)) == len(HEADER) + 1 and row(n)[-1]
    for n in _faulty_rows(sidecar, "too_few_fields"):
        assert len(row(n)) < len(HEADER)
    lines = export["lines"]
    for n in _faulty_rows(sidecar, "exact_duplicate"):
        assert lines[n - 1] in lines[: n - 1]
    for n in _faulty_rows(sidecar, "impossible_date"):
        assert any(v[6:10] in ("1900", "2099") and _time(v) for v in row(n)[TIMES])
    for n in _faulty_rows(sidecar, "placeholder_time"):
        assert PLACEHOLDER_TIME in row(n)[TIMES]


def test_arrivals_before_receipt_and_coordinates_out_of_bounds(export: dict) -> None:
    rows, sidecar = export["rows"], export["sidecar"]
    early = [n for n in _faulty_rows(sidecar, "arrived_before_received")
             if _time(rows[n - 1][3]) < _time(rows[n - 1][1])]
    # a fall-back hour can make an earlier instant read as a later wall-clock time
    assert len(early) >= 0.95 * sidecar["faults"]["arrived_before_received"]["count"]
    bounds = builtin_mapping("synthetic_cad").bounds
    assert bounds is not None
    for n in _faulty_rows(sidecar, "coordinates_out_of_bounds"):
        lat, lon = (float(v) for v in rows[n - 1][11:13])
        assert not (bounds.min_latitude <= lat <= bounds.max_latitude
                    and bounds.min_longitude <= lon <= bounds.max_longitude)


def test_rows_not_listed_are_clean(export: dict) -> None:
    """The sidecar counts every fault: no unlisted row has one."""
    sidecar, rows = export["sidecar"], export["rows"]
    listed = {n for kind in sidecar["faults"].values() for n in kind["rows"]}
    bounds = builtin_mapping("synthetic_cad").bounds
    assert bounds is not None
    seen: set[str] = set()
    for n, row in enumerate(rows, start=1):
        if n in listed:
            continue
        assert len(row) == len(HEADER), n
        assert TIME_TEXT.match(row[1]) and _time(row[1]).year in (2022, 2023, 2024), n
        assert all(v == "" or TIME_TEXT.match(v) for v in row[2:5]), n
        assert row[5], n
        if row[11]:
            assert bounds.min_latitude <= float(row[11]) <= bounds.max_latitude, n
            assert bounds.min_longitude <= float(row[12]) <= bounds.max_longitude, n
        assert row[0] not in seen, n
        seen.add(row[0])


def test_times_are_twelve_hour_local_with_real_daylight_saving(export: dict) -> None:
    tz = ZoneInfo("America/Chicago")
    received = [_time(r[1]) for r in export["rows"] if len(r) > 1 and TIME_TEXT.match(r[1])]
    assert any(r.hour == 0 for r in received) and any(r.hour == 23 for r in received)
    skipped = [r for r in received
               if r.replace(tzinfo=tz).astimezone(ZoneInfo("UTC")).astimezone(tz)
               .replace(tzinfo=None) != r]
    assert skipped == [], "no call is received in a spring-forward gap"
    expected = export["sidecar"]["expected_ingest"]["problems"]
    assert sum(v for k, v in expected.items() if k.endswith("ambiguous_local_time")) > 0


def test_caller_phones_are_fictional_and_addresses_have_house_numbers(export: dict) -> None:
    full = [r for r in export["rows"] if len(r) == len(HEADER)]
    phones = [r[16] for r in full if r[16]]
    assert len(phones) > 0.5 * len(full)
    assert all(PHONE.match(p) for p in phones)
    with_number = [r[10] for r in full if re.match(r"^[0-9]+ [NSEW] ", r[10])]
    assert len(with_number) > 0.8 * len(full)
    assert any(", APT " in r[10] for r in full), "some flats follow a quoted comma"


def test_at_least_5000_type_disposition_priority_combinations(export: dict) -> None:
    """Distinct (initial, final, disposition, priority) grow with the number of calls, so
    5,000 at 50,000 calls means at least 5,000 at 10 million."""
    combos = {tuple(r[5:9]) for r in export["rows"] if len(r) == len(HEADER) and r[6]}
    assert len(combos) >= 5_000
    priorities = {r[7] for r in export["rows"] if len(r) == len(HEADER)}
    assert priorities == {"P1", "P2", "P3", "P4", "1", "2", "3", "4"}


def test_truth_covers_every_call_once(export: dict) -> None:
    truth, sidecar = export["truth"], export["sidecar"]
    assert truth.num_rows == CALLS
    ids = truth.column("call_id").to_pylist()
    assert len(set(ids)) == CALLS and all(i.startswith("synthetic_cad:P") for i in ids)
    faults = truth.column("export_fault").to_pylist()
    for kind, listed in sidecar["faults"].items():
        expected = 0 if kind == "exact_duplicate" else listed["count"]
        if kind != "exact_duplicate":
            assert faults.count(kind) == expected, kind
    rows = export["rows"]
    for record in truth.slice(0, 500).to_pylist():
        row = rows[record["export_row"] - 1]
        assert row[0] == record["source_record_id"]
    mh = [f for f in truth.column("flags").to_pylist() if "mental_health" in f]
    assert 0.02 * CALLS < len(mh) < 0.1 * CALLS


def test_mapping_bounds_are_the_city_with_its_margin() -> None:
    bounds = builtin_mapping("synthetic_cad").bounds
    assert bounds is not None
    assert bounds.model_dump() == CityFrame().bounds()


def test_bad_fault_rate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fault_rate"):
        write_export(build_city(1), tmp_path / "x.csv", 10, fault_rate=0.9)
