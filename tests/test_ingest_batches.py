"""Batches are idempotent per record and atomic: overlapping exports, re-ingests, SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cswb.settings import Settings
from cswb.storage import AnalyticStore
from tests.helpers import ingest_with, one, rows, table_digest

MAPPING: dict[str, Any] = {
    "name": "overlap",
    "agency": "Test Police",
    "time_zone": "America/New_York",
    "file": {"format": "csv", "delimiter": ","},
    "record_id": "event",
    "timestamps": {"received_at": {"column": "received", "formats": ["%m/%d/%Y %I:%M:%S %p"]}},
    "fields": {"initial_call_type": "type", "disposition_raw": "dispo", "location": "address"},
}


def export(path: Path, first: int, last: int, changed: set[int] | None = None) -> Path:
    """A CSV export of events ``first..last``; ``changed`` events have another disposition."""
    changed = changed or set()
    lines = ["event,received,type,dispo,address"]
    for i in range(first, last + 1):
        dispo = "REPORT WRITTEN" if i in changed else "ASSISTANCE RENDERED"
        lines.append(f"E{i:07d},03/{1 + i % 28:02d}/2022 {1 + i % 12}:{i % 60:02d}:{i % 60:02d} "
                     f"{'AM' if i % 2 else 'PM'},TYPE {i % 37},{dispo},{i % 9000 + 100} ELM ST")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_overlapping_exports_add_only_new_records(tmp_path: Path, store: AnalyticStore,
                                                  settings: Settings) -> None:
    a = ingest_with(store, settings, MAPPING, export(tmp_path / "a.csv", 1, 1000))
    assert a.inserted == 1000
    changed = {600, 601, 950}
    b = ingest_with(store, settings, MAPPING, export(tmp_path / "b.csv", 501, 1500, changed))
    assert b.reconciles and b.rows_read == 1000
    assert (b.inserted, b.updated, b.unchanged, b.duplicate) == (500, 3, 497, 0)
    assert one(store, "SELECT count(*) FROM calls") == 1500
    assert one(store, "SELECT count(DISTINCT call_id) FROM calls") == 1500
    assert one(store, "SELECT disposition_raw FROM calls WHERE source_record_id = 'E0000600'") \
        == "REPORT WRITTEN"
    changes = rows(store, "SELECT call_id, previous_batch_id, batch_id, changed_fields FROM "
                          "call_changes ORDER BY call_id")
    assert [c[0] for c in changes] == ["overlap:E0000600", "overlap:E0000601", "overlap:E0000950"]
    assert all(c[1] == a.batch_id and c[2] == b.batch_id for c in changes)
    assert changes[0][3] == ["disposition_raw", "disposition_group"]
    before = table_digest(store)
    again = ingest_with(store, settings, MAPPING, tmp_path / "b.csv")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1000)
    after = table_digest(store)
    assert after["calls"] == before["calls"] and after["call_changes"] == before["call_changes"]
    assert len(after["batches"]) == 3


def test_failed_batch_leaves_store_untouched(tmp_path: Path, store: AnalyticStore,
                                             settings: Settings) -> None:
    ingest_with(store, settings, MAPPING, export(tmp_path / "a.csv", 1, 100))
    before = table_digest(store)
    bad = dict(MAPPING, fields={**MAPPING["fields"], "district": "no_such_column"})
    with pytest.raises(Exception, match="no_such_column"):
        ingest_with(store, settings, bad, export(tmp_path / "b.csv", 50, 200))
    assert table_digest(store) == before
    assert not any((store.root / "_staging").glob("*/main"))


KILL_SCRIPT = """
import sys
from pathlib import Path
from cswb.settings import load_settings
from cswb.storage import open_analytic_store
from cswb.ingest.mapping import parse_mapping
from cswb.ingest.pipeline import ingest_file
import json
settings = load_settings(store_url=sys.argv[1], duckdb_memory_limit="1GB")
store = open_analytic_store(settings.resolved_store_url, settings)
ingest_file(Path(sys.argv[2]), parse_mapping(json.loads(sys.argv[3])), store, settings)
"""


def big_export(path: Path, n: int) -> Path:
    """A larger export written by DuckDB itself (fast), same layout as :func:`export`."""
    con = duckdb.connect()
    con.execute(f"""
        COPY (SELECT 'E' || lpad(CAST(i AS VARCHAR), 7, '0') AS event,
                     strftime(TIMESTAMP '2022-03-01' + to_seconds(i * 37 % 2000000),
                              '%m/%d/%Y %I:%M:%S %p') AS received,
                     'TYPE ' || (i % 37) AS type,
                     CASE WHEN i % 7 = 0 THEN 'REPORT WRITTEN' ELSE 'ASSISTANCE RENDERED' END
                         AS dispo,
                     (i % 9000 + 100) || ' ELM ST' AS address
              FROM range(1, {n + 1}) r(i))
        TO '{path}' (HEADER, DELIMITER ',')""").fetchall()
    con.close()
    return path


def run_ingest(store_url: str, path: Path) -> subprocess.Popen[bytes]:
    import json

    return subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, store_url, str(path),
                             json.dumps(MAPPING)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


@pytest.mark.slow
def test_sigkill_mid_batch_leaves_store_exactly_as_before(tmp_path: Path, store: AnalyticStore,
                                                           settings: Settings) -> None:
    url = settings.resolved_store_url
    first = big_export(tmp_path / "first.csv", 100_000)
    second = big_export(tmp_path / "second.csv", 400_000)  # overlaps: resolve path too
    # time one whole run in a scratch store, to spread the kills over a batch's phases
    scratch = tmp_path / "scratch"
    started = time.monotonic()
    probe = run_ingest(f"duckdb:///{scratch.as_posix()}", second)
    assert probe.wait(timeout=600) == 0, probe.stderr.read() if probe.stderr else ""
    duration = time.monotonic() - started
    ingest_with(store, settings, MAPPING, first)
    before = table_digest(store)
    version = store.read_manifest().version
    killed = 0
    for fraction in (0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95):
        proc = run_ingest(url, second)
        time.sleep(duration * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if proc.returncode == 0:  # it finished before the kill; later points would too
            break
        killed += 1
        assert proc.returncode == -signal.SIGKILL
        if store.read_manifest().version != version:
            # killed after its commit, while it tidied up (a loaded machine shifts the phases):
            # then the batch must be there whole
            assert store.read_manifest().version == version + 1, fraction
            assert one(store, "SELECT count(*) FROM calls") == 400_000, fraction
            break
        assert table_digest(store) == before, fraction
    assert killed >= 4
    if store.read_manifest().version == version:
        final = ingest_with(store, settings, MAPPING, second)
        assert final.reconciles and (final.inserted, final.unchanged) == (300_000, 100_000)
    assert one(store, "SELECT count(*) FROM calls") == 400_000
    ingest_with(store, settings, MAPPING, first)  # a writer collects any garbage first
    leftovers = [p for p in (store.root / "_staging").iterdir() if p.name != "_duckdb_tmp"]
    assert leftovers == []
    manifest = store.read_manifest()
    referenced = {f["path"] for fs in manifest.tables.values() for f in fs}
    referenced |= {r["path"] for r in manifest.retired}
    on_disk = {p.relative_to(store.root).as_posix() for p in store.root.glob("*/*.parquet")}
    assert on_disk == referenced
    assert os.path.exists(store.manifest_path)


def test_batch_constants_are_kept_once_and_read_back_per_file(tmp_path: Path,
                                                              store: AnalyticStore,
                                                              settings: Settings) -> None:
    """Source, agency, batch id, file hash, zone and precisions live in the manifest entry of
    each call file, not in its rows; the calls view gives them back, file by file, also after an
    update rewrote an older file."""
    a = ingest_with(store, settings, MAPPING, export(tmp_path / "a.csv", 1, 50))
    b = ingest_with(store, settings, MAPPING, export(tmp_path / "b.csv", 41, 60, {45}))
    assert (a.inserted, b.inserted, b.updated) == (50, 10, 1)
    entries = store.read_manifest().files("calls")
    assert {e["batch_id"] for e in entries if e.get("constants")} == {b.batch_id}
    for entry in entries:  # a's main file was rewritten by the update: it holds them now
        path = store.root / entry["path"]
        held = {r[0] for r in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')")
                .fetchall()}
        assert not held & set(entry.get("constants", {})), entry["path"]
    got = rows(store, """SELECT batch_id, file_sha256, source, agency, time_zone,
                             min(received_precision), count(*)
                         FROM calls GROUP BY ALL ORDER BY count(*) DESC""")
    common = ("overlap", "Test Police", "America/New_York", "second")
    assert got == [(a.batch_id, a.file_sha256, *common, 49),
                   (b.batch_id, b.file_sha256, *common, 11)]


def test_code_lookup_text_is_typed_enum_when_few_and_stored_as_text(
        tmp_path: Path, store: AnalyticStore, settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from cswb.ingest import pipeline

    con = duckdb.connect()
    con.execute("CREATE TABLE dim AS SELECT 'C' || (i % 3) AS few, 'M' || i AS many, "
                "NULL::VARCHAR AS empty FROM range(20) t(i)")
    monkeypatch.setattr(pipeline, "ENUM_LIMIT", 10)
    pipeline._typed_as_enums(con, "dim", "typed", ["few", "many", "empty"])
    types = {name: kind for name, kind, *_ in con.execute("DESCRIBE typed").fetchall()}
    assert types["few"] == "ENUM('C0', 'C1', 'C2')"
    assert types["many"] == types["empty"] == "VARCHAR"
    assert con.execute("SELECT count(*) FROM typed t JOIN dim d ON CAST(t.few AS VARCHAR) = "
                       "d.few AND t.many = d.many").fetchone() == (20,)
    monkeypatch.undo()

    ingest_with(store, settings, MAPPING, export(tmp_path / "a.csv", 1, 50, {7}))
    assert rows(store, "SELECT disposition_raw, disposition_group, count(*) FROM calls "
                       "GROUP BY ALL ORDER BY 1") == [
        ("ASSISTANCE RENDERED", "service_rendered", 49), ("REPORT WRITTEN", "report", 1)]
    files = list((store.root / "calls").glob("*.parquet"))
    schema = {name: (kind, text) for name, kind, text in duckdb.sql(
        f"SELECT name, type, converted_type FROM parquet_schema('{files[0]}')").fetchall()}
    assert schema["disposition_raw"] == schema["disposition_group"] == ("BYTE_ARRAY", "UTF8")
