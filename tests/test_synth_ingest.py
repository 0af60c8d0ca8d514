"""End to end: the synthetic CAD export through the built-in mapping into a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cswb.ingest.mapping import builtin_mapping
from cswb.ingest.pipeline import BatchSummary, ingest_file
from cswb.settings import Settings
from cswb.storage import AnalyticStore
from cswb.storage.sql import run, scalar
from cswb.synth import build_city, write_export

CALLS = 30_000
PHONE_SQL = "555-01[0-9][0-9]"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    folder = tmp_path_factory.mktemp("synthetic")
    result = write_export(build_city(5), folder / "calls.csv", CALLS, years=2,
                          truth_path=folder / "truth.parquet")
    return result.csv_path, json.loads(result.faults_path.read_text()), folder / "truth.parquet"


def _ingest(path: Path, store: AnalyticStore, settings: Settings) -> BatchSummary:
    return ingest_file(path, builtin_mapping("synthetic_cad"), store, settings)


def test_ingest_reports_exactly_what_the_sidecar_predicts(
        export: tuple[Path, dict, Path], store: AnalyticStore, settings: Settings) -> None:
    path, sidecar, _ = export
    summary = _ingest(path, store, settings)
    expected = sidecar["expected_ingest"]
    assert summary.reconciles
    assert summary.rows_read == sidecar["rows"] == expected["rows_read"]
    assert summary.inserted == expected["inserted"]
    assert summary.duplicate == expected["duplicate"]
    assert summary.quarantined == expected["quarantined"]
    assert summary.reasons == expected["reasons"]
    assert summary.flagged == expected["flagged"]
    assert summary.problems == expected["problems"]
    assert summary.updated == summary.unchanged == 0
    faults = sidecar["faults"]
    assert summary.duplicate == faults["exact_duplicate"]["count"]
    assert summary.reasons["no_call_type"] == faults["empty_call_type"]["count"]
    assert summary.reasons["too_many_columns"] == faults["too_many_fields"]["count"]
    assert summary.reasons["missing_columns"] == faults["too_few_fields"]["count"]


def test_quarantined_rows_are_the_listed_ones(
        export: tuple[Path, dict, Path], store: AnalyticStore, settings: Settings) -> None:
    path, sidecar, _ = export
    _ingest(path, store, settings)
    con = store.connect()
    try:
        by_reason = {reason: sorted(r for (r,) in run(
            con, f"SELECT source_row FROM quarantine WHERE reason = '{reason}'"))
            for reason in ("no_usable_time", "no_call_type", "too_many_columns",
                           "missing_columns")}
    finally:
        con.close()
    faults = sidecar["faults"]
    assert by_reason["no_usable_time"] == faults["no_usable_time"]["rows"]
    assert by_reason["no_call_type"] == faults["empty_call_type"]["rows"]
    assert by_reason["too_many_columns"] == faults["too_many_fields"]["rows"]
    assert by_reason["missing_columns"] == faults["too_few_fields"]["rows"]


def _text_columns(con: object, view: str) -> list[str]:
    return [name for name, *_ in run(con, f"DESCRIBE {view}")]  # type: ignore[arg-type]


def test_caller_phones_never_reach_the_store(
        export: tuple[Path, dict, Path], store: AnalyticStore, settings: Settings) -> None:
    path, _, _ = export
    assert b"-555-01" in path.read_bytes()
    _ingest(path, store, settings)
    con = store.connect()
    try:
        for view in ("calls", "quarantine", "call_quality", "batches", "call_changes"):
            for column in _text_columns(con, view):
                hits = scalar(con, f'SELECT count(*) FROM {view} WHERE regexp_matches('
                                   f'CAST("{column}" AS VARCHAR), \'{PHONE_SQL}\')')
                assert hits == 0, f"{view}.{column} holds caller phone numbers"
        withheld = scalar(con, "SELECT count(*) FROM quarantine WHERE reason = "
                               "'too_many_columns' AND raw_text LIKE '%[withheld]%'")
        assert withheld > 0, "misshapen rows keep their text with the phone withheld"
    finally:
        con.close()


def test_stored_calls_agree_with_the_truth(
        export: tuple[Path, dict, Path], store: AnalyticStore, settings: Settings) -> None:
    path, _, truth_path = export
    _ingest(path, store, settings)
    con = store.connect()
    try:
        con.register("truth", pa.Table.from_batches(
            pq.read_table(truth_path).to_batches()))
        stored = scalar(con, "SELECT count(*) FROM calls JOIN truth USING (call_id)")
        assert stored == scalar(con, "SELECT count(*) FROM calls")
        wrong_time = scalar(con, """
            SELECT count(*) FROM calls JOIN truth t USING (call_id)
            WHERE calls.received_at IS DISTINCT FROM t.received_at
              AND NOT list_contains(coalesce(dq_flags, []), 'received_at:ambiguous_local_time')
              AND NOT list_has_any(coalesce(dq_flags, []), ['received_at:impossible_date',
                  'received_at:unparseable', 'received_at:placeholder'])""")
        assert wrong_time == 0
        ambiguous = scalar(con, """
            SELECT count(*) FROM calls JOIN truth t USING (call_id)
            WHERE list_contains(dq_flags, 'received_at:ambiguous_local_time')
              AND calls.received_at NOT IN (t.received_at, t.received_at - INTERVAL 1 HOUR)""")
        assert ambiguous == 0
        for column in ("disposition_group", "origin", "neighbourhood", "district", "beat"):
            assert scalar(con, f"SELECT count(*) FROM calls JOIN truth t USING (call_id) "
                               f"WHERE calls.{column} IS DISTINCT FROM t.{column}") == 0, column
        assert scalar(con, "SELECT count(*) FROM calls JOIN truth t USING (call_id) "
                           "WHERE calls.call_type <> t.call_type") == 0
        assert scalar(con, "SELECT count(*) FROM calls WHERE location ~ '^[0-9]+ '") == 0, \
            "house numbers are generalised to the hundred block"
    finally:
        con.close()


def test_a_row_with_one_field_too_many_and_an_empty_last_field_is_quarantined(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    header = ("Incident Number,Call Received,Dispatched,On Scene,Cleared,Initial Type,"
              "Final Type,Priority,Disposition,Call Source,Address,Latitude,Longitude,"
              "District,Beat,Neighborhood,Caller Phone")
    good = ("P24-0000001,03/01/2024 6:08:26 PM,,,03/01/2024 6:30:00 PM,THEFT,THEFT,3,"
            "Report Written,TELEPHONE,1234 N 5TH ST,38.6,-100.3,SOUTHWEST,1A,Millbrook,")
    shifted = ("P24-0000002,03/01/2024 7:08:26 PM,,,03/01/2024 7:30:00 PM,THEFT,THEFT,3,"
               "Report Written,ONVIEW,1234 N 5TH ST, APT 9,38.6,-100.3,SOUTHWEST,1A,Millbrook,")
    path = tmp_path / "calls.csv"
    path.write_text("\r\n".join([header, good, shifted]) + "\r\n", encoding="utf-8")
    summary = _ingest(path, store, settings)
    # an unquoted comma in the address: one field too many, the last one empty (the padded
    # reader keeps it, so the row is not stored with its columns shifted)
    assert summary.reasons == {"too_many_columns": 1}
    assert summary.inserted == 1
