"""Local time to UTC: the set-based SQL agrees with zoneinfo on every zone and instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cswb.errors import MappingError
from cswb.ingest.timezones import (
    FOLD,
    GAP,
    day_table,
    join_sql,
    to_utc,
    transitions,
    utc_sql,
    window_sql,
    zone,
)
from cswb.storage.sql import run

ZONES = [
    "America/Chicago", "America/Los_Angeles", "America/Phoenix", "America/St_Johns",
    "Europe/London", "Australia/Lord_Howe", "America/Santiago", "America/Havana",
    "Pacific/Chatham", "Asia/Kolkata", "America/Sao_Paulo", "Africa/Casablanca",
]
START, END = date(1971, 1, 1), date(2030, 12, 31)


def sql_convert(name: str, locals_: list[datetime]) -> list[tuple[datetime, str | None]]:
    con = duckdb.connect()
    run(con, "SET TimeZone = 'UTC'")
    con.register("tz_days", day_table(name, START, END))
    con.register("t", pa.table({"i": list(range(len(locals_))),
                                "ts": pa.array(locals_, pa.timestamp("us"))}))
    rows = run(con, f"SELECT i, {utc_sql('t.ts', 'z')}, {window_sql('t.ts', 'z')} FROM t "
                    f"{join_sql('t.ts', 'z')} ORDER BY i")
    return [(utc, kind) for _, utc, kind in rows]


@settings(max_examples=60, deadline=None)
@given(zone_name=st.sampled_from(ZONES),
       stamps=st.lists(st.datetimes(min_value=datetime(1971, 1, 2),
                                    max_value=datetime(2030, 12, 30)), min_size=1, max_size=40))
def test_sql_matches_zoneinfo_everywhere(zone_name: str, stamps: list[datetime]) -> None:
    stamps = [s.replace(microsecond=0) for s in stamps]
    got = sql_convert(zone_name, stamps)
    for local, (utc, kind) in zip(stamps, got, strict=True):
        expected_utc, expected_kind = to_utc(zone_name, local)
        assert utc == expected_utc, (zone_name, local)
        assert kind == expected_kind, (zone_name, local)


def _around_transitions(name: str) -> list[datetime]:
    """Wall-clock times in and around every transition window of 2015-2024."""
    probes = []
    for t in transitions(name, date(2015, 1, 1), date(2024, 12, 31)):
        start, end = t.window
        for base in (start, end, t.boundary):
            probes.extend(base + timedelta(minutes=m) for m in (-61, -1, 0, 1, 29, 59, 61))
    return probes


@pytest.mark.parametrize("zone_name", ZONES)
def test_every_transition_window_edge(zone_name: str) -> None:
    probes = _around_transitions(zone_name)
    got = sql_convert(zone_name, probes)
    for local, (utc, kind) in zip(probes, got, strict=True):
        assert (utc, kind) == to_utc(zone_name, local), (zone_name, local)


def test_spring_forward_moves_forward_and_fall_back_takes_first() -> None:
    gap = datetime(2018, 3, 11, 2, 30)
    fold = datetime(2018, 11, 4, 1, 30)
    (gap_utc, gap_kind), (fold_utc, fold_kind) = sql_convert("America/Chicago", [gap, fold])
    assert gap_kind == GAP and gap_utc == datetime(2018, 3, 11, 8, 30, tzinfo=UTC)  # 03:30 CDT
    assert fold_kind == FOLD and fold_utc == datetime(2018, 11, 4, 6, 30, tzinfo=UTC)  # CDT


def test_unknown_zone_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="IANA"):
        zone("Mars/Olympus_Mons")
