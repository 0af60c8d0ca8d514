"""Bad input of every kind: a clear error or a quarantined row with its reason; nothing lost."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from cswb.errors import MappingError, SourceFileError
from cswb.settings import Settings, load_settings
from cswb.storage import AnalyticStore, open_analytic_store
from tests.helpers import ingest_with, one, rows

HEADER = "id,received,arrived,type,address,lat,lon,phone"


def mapping(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "hostile",
        "agency": "Test Police",
        "time_zone": "America/Chicago",
        "file": {"format": "csv", "encoding": "utf-8", "delimiter": ","},
        "record_id": "id",
        "timestamps": {
            "received_at": {"column": "received", "formats": ["%Y-%m-%d %H:%M:%S"]},
            "arrived_at": {"column": "arrived", "formats": ["%Y-%m-%d %H:%M:%S"]},
        },
        "fields": {"initial_call_type": "type", "location": "address",
                   "latitude": "lat", "longitude": "lon"},
        "identifying": {"drop": ["phone"]},
        "bounds": {"min_latitude": 41, "max_latitude": 43, "min_longitude": -89,
                   "max_longitude": -87},
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def good_row(i: int) -> str:
    return f"{i},2021-06-0{1 + i % 9} 10:{i % 60:02d}:00,2021-06-0{1 + i % 9} 10:{i % 60:02d}:30," \
           f"THEFT,{100 + i} N MAIN ST,42.{i:03d},-88.{i:03d},(312) 555-01{i % 100:02d}"


def write(tmp_path: Path, text: str | bytes, name: str = "calls.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def body(n: int) -> str:
    return "\n".join(good_row(i) for i in range(1, n + 1))


def test_latin1_is_sniffed_and_decoded(tmp_path: Path, store: AnalyticStore,
                                       settings: Settings) -> None:
    text = HEADER + "\n" + body(3) + "\n4,2021-06-02 10:00:00,,VÉHICULE SUSPECT,1 RUE ÉTÉ,,,\n"
    path = write(tmp_path, text.encode("latin-1"))
    s = ingest_with(store, settings, mapping(file={"encoding": "auto"}), path)
    assert s.reconciles and s.inserted == 4 and s.encoding == "cp1252"
    assert one(store, "SELECT call_type FROM calls WHERE source_record_id = '4'") == \
        "VÉHICULE SUSPECT"


def test_latin1_bytes_in_a_declared_utf8_file_are_quarantined(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    text = (HEADER + "\n" + body(3) + "\n").encode() + \
        "4,2021-06-02 10:00:00,,VÉHICULE,1 RUE,,,\n".encode("latin-1") + \
        (good_row(5) + "\n").encode()
    s = ingest_with(store, settings, mapping(), write(tmp_path, text))
    assert s.reconciles and s.rows_read == 5 and s.inserted == 4
    assert s.reasons == {"invalid_encoding": 1}
    assert rows(store, "SELECT source_row FROM quarantine") == [(4,)]
    assert one(store, "SELECT max(source_row) FROM calls") == 5


def test_utf8_bom_and_utf16(tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    text = HEADER + "\n" + body(3) + "\n"
    bom = write(tmp_path, b"\xef\xbb\xbf" + text.encode(), "bom.csv")
    s = ingest_with(store, settings, mapping(file={"encoding": "auto"}), bom)
    assert s.reconciles and s.inserted == 3
    utf16 = write(tmp_path, text.encode("utf-16"), "utf16.csv")
    s16 = ingest_with(store, settings, mapping(file={"encoding": "auto"}), utf16)
    assert s16.encoding == "utf-16" and s16.reconciles and s16.unchanged == 3


def test_truncated_last_row(tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    path = write(tmp_path, HEADER + "\n" + body(3) + "\n4,2021-06-02 10:00:00,,THE")
    s = ingest_with(store, settings, mapping(), path)
    assert s.reconciles and s.inserted == 3 and s.reasons == {"missing_columns": 1}
    # four fields missing: the caller's phone (the last column) could have moved up to four
    # places left, so the last field read is withheld
    assert rows(store, "SELECT source_row, raw_text FROM quarantine") == \
        [(4, "4,2021-06-02 10:00:00,,[withheld]")]


def test_rows_with_the_wrong_number_of_fields_keep_their_place_and_text(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    # an unquoted comma in the call type; the quoted one in the address is fine
    long_row = good_row(3).replace("THEFT", "THEFT, AUTO").replace(
        "103 N MAIN ST", '"103 N MAIN ST, REAR"')
    short_row = "4,2021-06-02 10:00:00,,THEFT,104 N MAIN ST"
    lines = [HEADER, good_row(1), good_row(2), long_row, short_row, good_row(5)]
    s = ingest_with(store, settings, mapping(), write(tmp_path, "\n".join(lines) + "\n"))
    assert s.reconciles and s.inserted == 3
    assert s.reasons == {"too_many_columns": 1, "missing_columns": 1}
    quarantined = rows(store, "SELECT source_row, reason, detail, record IS NULL, raw_text "
                              "FROM quarantine ORDER BY source_row")
    assert [r[:2] for r in quarantined] == [(3, "too_many_columns"), (4, "missing_columns")]
    assert quarantined[0][2] == "the row has more fields than the header"
    # fields out of place: no record by column name, only the text, re-quoted and scrubbed
    assert quarantined[0][3] and quarantined[1][3]
    # one field too many: the phone (last column) may sit one place right, so both places
    # are withheld; a house number near the address column is generalised
    assert quarantined[0][4] == ('3,2021-06-04 10:03:00,2021-06-04 10:03:30,THEFT, AUTO,'
                                 '"1XX N MAIN ST, REAR",42.003,[withheld],[withheld]')
    # three fields too few: the phone could be in any of the three places before its own
    assert quarantined[1][4] == "4,2021-06-02 10:00:00,,THEFT,[withheld]"
    assert rows(store, "SELECT source_row FROM calls ORDER BY 1") == [(1,), (2,), (5,)]


def test_a_file_with_quoted_line_breaks_is_read_by_the_strict_reader(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    multiline = good_row(2).replace("THEFT", '"THEFT\nFROM AUTO"')
    short_row = "4,2021-06-02 10:00:00,,THEFT,104 N MAIN ST"
    lines = [HEADER, good_row(1), multiline, good_row(3), short_row, good_row(5)]
    s = ingest_with(store, settings, mapping(), write(tmp_path, "\n".join(lines) + "\n"))
    assert s.reconciles and s.inserted == 4 and s.reasons == {"missing_columns": 1}
    assert rows(store, "SELECT source_row FROM quarantine") == [(4,)]
    assert rows(store, "SELECT source_row, call_type FROM calls ORDER BY 1") == [
        (1, "THEFT"), (2, "THEFT\nFROM AUTO"), (3, "THEFT"), (5, "THEFT")]


def test_wrong_delimiter_is_a_clear_error(tmp_path: Path, store: AnalyticStore,
                                          settings: Settings) -> None:
    text = (HEADER + "\n" + body(3)).replace(",", ";")
    path = write(tmp_path, text)
    with pytest.raises(MappingError, match="delimited by ';'"):
        ingest_with(store, settings, mapping(), path)
    assert store.read_manifest().version == 0
    s = ingest_with(store, settings, mapping(file={"delimiter": "auto"}), path)
    assert s.reconciles and s.inserted == 3 and s.delimiter == ";"


def test_unbalanced_quote_keeps_the_swallowed_text(tmp_path: Path, store: AnalyticStore,
                                                   settings: Settings) -> None:
    lines = [HEADER, good_row(1), good_row(2).replace("THEFT", '"THEFT'), good_row(3),
             good_row(4), good_row(5)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    s = ingest_with(store, settings, mapping(), path)
    assert s.reconciles
    stored = {r[0] for r in rows(store, "SELECT source_record_id FROM calls")}
    quarantined = rows(store, "SELECT reason, raw_text FROM quarantine")
    assert "1" in stored
    # every record is either stored or inside a quarantined record's raw text
    text = " ".join(r[1] for r in quarantined)
    for i in range(1, 6):
        assert str(i) in stored or f"{i},2021-06-0{1 + i % 9} 10:{i:02d}:00" in text
    assert "1XX N MAIN ST" in text and "103 N MAIN" not in text  # house numbers cut
    assert {r[0] for r in quarantined} <= {"unbalanced_quote", "too_many_columns",
                                            "missing_columns"}
    assert "555" not in text  # phone numbers are scrubbed from raw text
    details = " ".join(r[0] for r in rows(store, "SELECT detail FROM quarantine"))
    assert "the record runs over" in details  # the swallowed rows are said to be in it


def test_impossible_and_far_future_dates(tmp_path: Path, store: AnalyticStore,
                                         settings: Settings) -> None:
    lines = [HEADER,
             "1,1900-01-01 10:00:00,,THEFT,1 A ST,,,",       # only time impossible: quarantined
             "2,2099-01-01 10:00:00,,THEFT,1 A ST,,,",       # far future: quarantined
             "3,2021-02-30 10:00:00,,THEFT,1 A ST,,,",       # no such day: quarantined
             "4,2021-06-01 10:00:00,2099-06-01 10:00:00,THEFT,1 A ST,,,",  # optional: flagged
             "5,not a date,2021-06-01 10:00:00,THEFT,1 A ST,,,"]           # falls back to arrival
    s = ingest_with(store, settings, mapping(), write(tmp_path, "\n".join(lines) + "\n"))
    assert s.reconciles and s.reasons == {"no_usable_time": 3} and s.inserted == 2
    assert one(store, "SELECT dq_flags FROM calls WHERE source_record_id = '4'") == \
        ["arrived_at:impossible_date"]
    five = rows(store, "SELECT call_at_basis, dq_flags FROM calls WHERE source_record_id = '5'")
    assert five == [("arrived", ["received_at:unparseable"])]
    details = dict(rows(store, "SELECT source_row, detail FROM quarantine"))
    assert details[1] == "received_at:impossible_date" and details[3] == "received_at:unparseable"


def test_arrived_before_received_is_flagged_not_dropped(tmp_path: Path, store: AnalyticStore,
                                                        settings: Settings) -> None:
    line = "1,2021-06-01 10:00:00,2021-06-01 09:00:00,THEFT,1 A ST,,,"
    s = ingest_with(store, settings, mapping(), write(tmp_path, HEADER + "\n" + line + "\n"))
    assert s.inserted == 1 and s.problems == {"arrived_at:out_of_order": 1}
    assert rows(store, "SELECT arrived_at, dq_flags FROM calls") == \
        [(None, ["arrived_at:out_of_order"])]
    assert one(store, "SELECT original FROM call_quality") == "2021-06-01 09:00:00"


def test_duplicate_ids(tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    lines = [HEADER, good_row(1), good_row(2), good_row(1), good_row(3),
             good_row(3).replace("THEFT", "BURGLARY"), good_row(1)]
    s = ingest_with(store, settings, mapping(), write(tmp_path, "\n".join(lines) + "\n"))
    assert s.reconciles and s.rows_read == 6
    assert s.inserted == 3 and s.duplicate == 2
    assert s.reasons == {"conflicting_duplicate": 1}
    assert one(store, "SELECT call_type FROM calls WHERE source_record_id = '3'") == "BURGLARY"
    assert rows(store, "SELECT source_row, reason, detail FROM quarantine") == \
        [(4, "conflicting_duplicate",
          "record id 3 repeats with different content; row 5 is the version kept")]
    # the kept record's generalised location and rounded coordinates, not the exact ones
    assert one(store, "SELECT record['address'] || ' ' || record['lat'] FROM quarantine") == \
        "1XX N MAIN ST 42.003"


def test_ten_megabyte_field(tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    huge = "X" * (10 * 1024 * 1024)
    lines = [HEADER, good_row(1), good_row(2).replace("THEFT", huge), good_row(3)]
    s = ingest_with(store, settings, mapping(), write(tmp_path, "\n".join(lines) + "\n"))
    assert s.reconciles and s.inserted == 3
    assert one(store, "SELECT length(call_type) FROM calls WHERE source_record_id = '2'") == 200
    assert one(store, "SELECT length(original) FROM call_quality WHERE problem = 'truncated' "
                      "AND field = 'initial_call_type'") == len(huge)


def test_record_longer_than_the_limit_is_quarantined(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "v", store_url=f"duckdb:///{tmp_path}/s2",
                             ingest_max_line_bytes=4096, duckdb_memory_limit="1GB")
    store = open_analytic_store(settings.resolved_store_url, settings)
    lines = [HEADER, good_row(1), good_row(2).replace("THEFT", "Y" * 10_000), good_row(3)]
    s = ingest_with(store, settings, mapping(), write(tmp_path, "\n".join(lines) + "\n"))
    assert s.reconciles and s.inserted == 2 and s.reasons == {"line_too_long": 1}


def test_empty_and_header_only_files(tmp_path: Path, store: AnalyticStore,
                                     settings: Settings) -> None:
    with pytest.raises(SourceFileError, match="empty"):
        ingest_with(store, settings, mapping(), write(tmp_path, "", "empty.csv"))
    with pytest.raises(SourceFileError, match="empty"):
        ingest_with(store, settings, mapping(), write(tmp_path, "\n\n  \n", "blank.csv"))
    s = ingest_with(store, settings, mapping(), write(tmp_path, HEADER + "\n", "header.csv"))
    assert s.reconciles and s.rows_read == 0 and s.inserted == 0
    assert one(store, "SELECT count(*) FROM batches") == 1


def test_excel_with_several_sheets(tmp_path: Path, store: AnalyticStore,
                                   settings: Settings) -> None:
    from openpyxl import Workbook

    book = Workbook()
    notes = book.active
    notes.title = "Notes"
    notes.append(["These are notes, not calls."])
    data = book.create_sheet("Calls")
    data.append(HEADER.split(","))
    for i in range(1, 4):
        data.append(good_row(i).split(","))
    path = tmp_path / "calls.xlsx"
    book.save(path)
    with pytest.raises(SourceFileError, match=r"2 sheets .*'Notes', 'Calls'"):
        ingest_with(store, settings, mapping(file={"format": "auto", "encoding": "auto"}), path)
    with pytest.raises(SourceFileError, match=r"no sheet 'Data'"):
        ingest_with(store, settings, mapping(file={"format": "excel", "sheet": "Data"}), path)
    s = ingest_with(store, settings, mapping(file={"format": "excel", "sheet": "Calls"}), path)
    assert s.reconciles and s.inserted == 3


def test_hostile_strings_are_stored_verbatim(tmp_path: Path, store: AnalyticStore,
                                             settings: Settings) -> None:
    nasty = ["'; DROP TABLE calls; --", "Robert\"); DELETE FROM batches;--", "\u202eTFEHT",
             "<script>alert(1)</script>", "ЗВОНОК 🚓", "tab\there"]
    lines = [HEADER] + [good_row(i).replace("THEFT", '"' + v.replace('"', '""') + '"')
                        for i, v in enumerate(nasty, start=1)]
    s = ingest_with(store, settings, mapping(), write(tmp_path, "\n".join(lines) + "\n"))
    assert s.reconciles and s.inserted == len(nasty)
    got = {r[0] for r in rows(store, "SELECT call_type FROM calls")}
    assert got == set(nasty)
    assert one(store, "SELECT count(*) FROM batches") == 1


def test_quoted_column_names(tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    header = 'id,"when ""received""",it\'s type'
    path = write(tmp_path, header + "\n1,2021-06-01 10:00:00,THEFT\n")
    m = mapping(identifying={})
    m["timestamps"] = {"received_at": {"column": 'when "received"',
                                       "formats": ["%Y-%m-%d %H:%M:%S"]}}
    m["fields"] = {"initial_call_type": "it's type"}
    s = ingest_with(store, settings, m, path)
    assert s.inserted == 1


def test_identifying_columns_never_stored(tmp_path: Path, store: AnalyticStore,
                                          settings: Settings) -> None:
    lines = [HEADER, good_row(1), "2,,,THEFT,1 A ST,,,(312) 555-0199", good_row(3)]
    ingest_with(store, settings, mapping(), write(tmp_path, "\n".join(lines) + "\n"))
    for table in ("calls", "quarantine", "call_quality", "batches"):
        dump = json.dumps([list(map(str, r)) for r in rows(store, f"SELECT * FROM {table}")])
        assert "555-01" not in dump, table
    assert one(store, "SELECT record['address'] FROM quarantine") == "0XX A ST"


def test_jsonl_with_a_malformed_line(tmp_path: Path, store: AnalyticStore,
                                     settings: Settings) -> None:
    records = [dict(zip(HEADER.split(","), good_row(i).split(","), strict=True))
               for i in range(1, 4)]
    text = "\n".join([json.dumps(records[0]), '{not json, "phone": "(312) 555-0199"',
                      json.dumps(records[1]), json.dumps(records[2])]) + "\n"
    s = ingest_with(store, settings, mapping(file={"format": "jsonl"}),
                    write(tmp_path, text, "calls.jsonl"))
    assert s.reconciles and s.inserted == 3 and s.reasons == {"malformed_record": 1}
    # the line cannot be split into fields, so its phone is scrubbed from the text it keeps
    assert rows(store, "SELECT source_row, raw_text FROM quarantine") == [
        (2, '{not json, "phone": "[phone]"')]


def test_parquet_and_gzip_inputs(tmp_path: Path, store: AnalyticStore,
                                 settings: Settings) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = HEADER.split(",")
    cols = list(zip(*[good_row(i).split(",") for i in range(1, 4)], strict=True))
    pq.write_table(pa.table({n: list(c) for n, c in zip(names, cols, strict=True)}),
                   tmp_path / "calls.parquet")
    s = ingest_with(store, settings, mapping(file={"format": "auto"}), tmp_path / "calls.parquet")
    assert s.reconciles and s.inserted == 3
    gz = tmp_path / "calls.csv.gz"
    gz.write_bytes(gzip.compress((HEADER + "\n" + body(4) + "\n").encode()))
    s2 = ingest_with(store, settings, mapping(file={"format": "auto"}), gz)
    assert s2.reconciles and s2.unchanged == 3 and s2.inserted == 1


def test_missing_mapped_column_names_the_columns(tmp_path: Path, store: AnalyticStore,
                                                 settings: Settings) -> None:
    path = write(tmp_path, "id,received,type\n1,2021-06-01 10:00:00,THEFT\n")
    with pytest.raises(MappingError, match="'arrived'"):
        ingest_with(store, settings, mapping(), path)


def test_missing_file_and_unknown_format(tmp_path: Path, store: AnalyticStore,
                                         settings: Settings) -> None:
    with pytest.raises(SourceFileError, match="does not exist"):
        ingest_with(store, settings, mapping(), tmp_path / "nope.csv")
    odd = write(tmp_path, "x", "calls.dat")
    with pytest.raises(SourceFileError, match=r"declare file\.format"):
        ingest_with(store, settings, mapping(file={"format": "auto"}), odd)


def test_placeholders_in_text_fields(tmp_path: Path, store: AnalyticStore,
                                     settings: Settings) -> None:
    lines = [HEADER, good_row(1).replace("101 N MAIN ST", "UNKNOWN"),
             good_row(2).replace("THEFT", "UNK"), good_row(3)]
    m = mapping(placeholders={"location": {"values": ["unknown"]},
                              "initial_call_type": {"values": ["UNK"]}})
    s = ingest_with(store, settings, m, write(tmp_path, "\n".join(lines) + "\n"))
    assert s.reconciles and s.inserted == 2 and s.reasons == {"no_call_type": 1}
    assert rows(store, "SELECT location, dq_flags FROM calls WHERE source_record_id = '1'") == \
        [(None, ["location:placeholder"])]
    assert one(store, "SELECT original FROM call_quality WHERE field = 'location'") == "UNKNOWN"
    assert one(store, "SELECT detail FROM quarantine") == "initial_call_type:placeholder"


def test_an_unguarded_conversion_is_a_clear_error_without_the_value() -> None:
    import duckdb

    from cswb.ingest.pipeline import _run

    with pytest.raises(SourceFileError, match="could not be converted") as caught:
        _run(duckdb.connect(), "SELECT CAST('(312) 555-0142' AS INTEGER)")
    assert "555" not in str(caught.value)


def test_no_file_in_the_store_holds_identifying_values_or_exact_addresses(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    """Every Parquet file the batch leaves in the store, read whole (not through the views):
    rows quarantined or resolved keep only their generalised record and scrubbed text."""
    too_many = good_row(2).replace("THEFT", "THEFT, AUTO")  # misshapen: fields as read
    no_time = "3,,,THEFT,103 N MAIN ST,42.003,-88.003,(312) 555-0103"  # well-shaped
    conflict = good_row(4).replace("THEFT", "BURGLARY")  # id 4 repeats with other content
    lines = [HEADER, good_row(1), too_many, no_time, good_row(4), conflict, good_row(5)]
    s = ingest_with(store, settings, mapping(), write(tmp_path, "\n".join(lines) + "\n"))
    assert s.reconciles and s.reasons == {"too_many_columns": 1, "no_usable_time": 1,
                                          "conflicting_duplicate": 1}
    files = sorted(store.root.rglob("*.parquet"))
    assert files
    for path in files:
        dump = json.dumps([list(map(str, r)) for r in rows(
            store, f"SELECT * FROM read_parquet('{path}')")])
        assert "555-01" not in dump, path.name
        for house in ("102 N MAIN", "103 N MAIN", "104 N MAIN"):
            assert house not in dump, (path.name, house)
    assert rows(store, "SELECT source_row, record['address'] FROM quarantine "
                       "WHERE record IS NOT NULL ORDER BY 1") == [(3, "1XX N MAIN ST"),
                                                                  (4, "1XX N MAIN ST")]


def test_quarantine_show_prints_markup_and_control_characters_as_text(
        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cswb.cli.main import app

    m = tmp_path / "m.yaml"
    m.write_text(json.dumps(mapping()), encoding="utf-8")
    hostile = "[/bold] [link=http://evil.example]x[/link] \x1b[2J"
    lines = [HEADER, good_row(1), f'2,,,"{hostile}",1 A ST,,,']
    path = write(tmp_path, "\n".join(lines) + "\n")
    env = {"CSWB_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "250"}
    runner = CliRunner()
    ingested = runner.invoke(app, ["ingest", str(path), "--mapping", str(m), "--quiet"], env=env)
    assert ingested.exit_code == 0, ingested.output
    listed = runner.invoke(app, ["quarantine", "list"], env=env)
    cells = [[c.strip() for c in line.split("│")] for line in listed.output.splitlines()]
    batch = next(c[1] for c in cells if len(c) > 5 and c[2] == "2")
    shown = runner.invoke(app, ["quarantine", "show", batch, "2"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "[/bold] [link=http://evil.example]x[/link] \\x1b[2J" in shown.output
    assert "\x1b" not in shown.output


def test_a_row_too_long_to_pad_beside_an_unclosed_quote_is_read_by_the_strict_reader(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    # the padded reader stops on this file with an error that quotes the whole row (phone
    # included): the strict reader reads it instead, and nothing quotes a line
    overlong = good_row(2).replace("THEFT", "THEFT" + ",a" * 10)
    unclosed = good_row(4).replace("THEFT", '"THEFT')
    lines = [HEADER, good_row(1), overlong, good_row(3), unclosed, good_row(5)]
    s = ingest_with(store, settings, mapping(), write(tmp_path, "\n".join(lines) + "\n"))
    assert s.reconciles and s.reasons.get("too_many_columns") == 1
    assert "unbalanced_quote" in s.reasons
    dump = json.dumps([list(map(str, r)) for r in rows(store, "SELECT * FROM quarantine")])
    assert "555-01" not in dump


def test_engine_errors_about_the_input_never_quote_it() -> None:
    from cswb.ingest.pipeline import _input_problem

    message = ("CSV Error on Line: 9\nOriginal Line: 9,THEFT,(312) 555-0199\n"
               "Expected Number of Columns: 25 Found: 26\nPossible fixes:\n* strict_mode=false")
    assert _input_problem(message) == ("CSV error on Line: 9; Expected Number of Columns: 25 "
                                       "Found: 26")
    assert _input_problem("Conversion Error: Could not convert string '555-0199'") == \
        "the reader stopped"


@pytest.mark.parametrize(("kept", "message"), [
    (0.02, "calls.csv.gz is not a readable gzip file"),  # cut inside the sniffed sample
    (0.6, "Unexpected end of GZIP stream"),  # far past it: the reader meets the end mid-scan
])
def test_a_gzip_file_cut_short_is_a_clear_error(tmp_path: Path, store: AnalyticStore,
                                               settings: Settings, kept: float,
                                               message: str) -> None:
    packed = gzip.compress((HEADER + "\n" + body(60000) + "\n").encode(), compresslevel=1)
    path = write(tmp_path, packed[: int(len(packed) * kept)], "calls.csv.gz")
    with pytest.raises(SourceFileError) as caught:  # (the folder's name holds "gzip" too)
        ingest_with(store, settings, mapping(), path)
    assert message in str(caught.value)
    assert rows(store, "SELECT count(*) FROM calls") == [(0,)]


def test_excel_cells_beyond_the_header_are_quarantined_not_dropped(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    sheet.append(good_row(1).split(","))
    sheet.append([*good_row(2).split(","), "RE-OPENED", None])  # a value past the header
    sheet.append([*good_row(3).split(","), None, ""])  # empty cells past it are nothing
    path = tmp_path / "calls.xlsx"
    book.save(path)
    s = ingest_with(store, settings, mapping(file={"format": "excel"}), path)
    assert s.reconciles and s.inserted == 2 and s.reasons == {"too_many_columns": 1}
    text = one(store, "SELECT raw_text FROM quarantine")
    assert text == ("2,2021-06-03 10:02:00,2021-06-03 10:02:30,THEFT,1XX N MAIN ST,42.002,"
                    "-88.002,[withheld],RE-OPENED")


@pytest.mark.parametrize("breaks", [["\r\n", "\n"], ["\r"], ["\r", "\n"], ["\r\n", "\r"]])
def test_mixed_and_lone_cr_line_breaks(tmp_path: Path, store: AnalyticStore,
                                       settings: Settings, breaks: list[str]) -> None:
    lines = [HEADER, *(good_row(i) for i in range(1, 41))]
    text = "".join(line + breaks[n % len(breaks)] for n, line in enumerate(lines))
    s = ingest_with(store, settings, mapping(), write(tmp_path, text))
    assert s.reconciles and s.inserted == 40 and s.quarantined == 0
    assert rows(store, "SELECT max(source_row) FROM calls") == [(40,)]


def test_jsonl_mixing_crlf_and_lone_cr_keeps_every_record(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    records = [json.dumps(dict(zip(HEADER.split(","), good_row(i).split(","), strict=True)))
               for i in range(1, 7)]
    ends = ["\r\n", "\r", "\n", "\r\n", "\r", "\r\n"]
    text = "".join(r + e for r, e in zip(records, ends, strict=True))
    s = ingest_with(store, settings, mapping(file={"format": "jsonl"}),
                    write(tmp_path, text, "calls.jsonl"))
    assert s.reconciles and s.inserted == 6 and s.quarantined == 0


@pytest.mark.parametrize(("text", "scrubbed"), [
    ('{"phone": "(312) 555-0199"', '{"phone": "[phone]"'),
    ("x,+44 7700 900123,y", "x,[phone],y"),
    ("+1 (312) 555-0199", "[phone]"),
    ("3125550199,555-0198", "[phone],[phone]"),
    ("EventDate:1610000000000,", "EventDate:1610000000000,"),  # a time, not a phone
    ("2021-06-03 10:02:00,38.589964,-100.250012,P21-0000008",
     "2021-06-03 10:02:00,38.589964,-100.250012,P21-0000008"),
    ("mail a.b@example.org", "mail [email]"),
])
def test_raw_text_scrubbing(text: str, scrubbed: str) -> None:
    import duckdb

    from cswb.ingest.readers import _scrub_sql

    assert duckdb.connect().execute(f"SELECT {_scrub_sql('?')}", [text]).fetchone() == (
        scrubbed,)


@pytest.mark.parametrize("case", [
    (gzip.compress(b"id,received\n1,2021-06-01 10:00:00\n"), "utf-8", "is a gzip file"),
    ("id,received\n".encode("utf-16"), "utf-8", "is UTF-16 .* declares file.encoding: utf-8"),
    (bytes(range(256)) * 64, "auto", "is not text"),
    (b"PK\x03\x04" + b"\x00" * 100, "auto", "Excel workbook"),
])
def test_a_file_that_is_not_delimited_text_says_what_it_looks_like(
        tmp_path: Path, store: AnalyticStore, settings: Settings,
        case: tuple[bytes, str, str]) -> None:
    content, declared, message = case
    path = write(tmp_path, content)
    with pytest.raises(SourceFileError, match=message):
        ingest_with(store, settings, mapping(file={"encoding": declared}), path)


def test_every_mapping_problem_is_reported_at_once() -> None:
    from cswb.ingest.mapping import parse_mapping

    bad = mapping(time_zone="Mars/Olympus", value_maps={"origin": {"values": {"OFF": "radio"}},
                                                         "priority": {"values": {"P1": 9}}})
    bad["timestamps"] = {"received_at": {"column": "received"}}  # no formats
    with pytest.raises(MappingError) as caught:
        parse_mapping(bad, "bad.yaml")
    message = str(caught.value)
    assert "time_zone" in message and "Mars/Olympus" in message
    assert "formats" in message
    assert "value_maps: origin: ['radio'] not in" in message
    assert "priority: ['9'] not in" in message
