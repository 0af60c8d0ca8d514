"""The linkage zone: caller phones of the synthetic CAD export sealed apart from the calls."""

from __future__ import annotations

import csv
import json
import logging
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from cswb.errors import CryptoError, LinkageError, MappingError
from cswb.ingest.mapping import Mapping, builtin_mapping, with_linkage
from cswb.ingest.pipeline import ingest_file
from cswb.linkage.store import COMMITTED, PENDING, linkage_values, open_linkage_store
from cswb.linkage.values import context, linkage_keyring, value_hash
from cswb.security.crypto import Keyring, generate_key
from cswb.settings import Settings, load_settings
from cswb.storage import AnalyticStore, open_analytic_store
from cswb.synth import build_city, write_export
from tests.helpers import rows, table_digest

CALLS = 4000


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("linkage")
    path = folder / "calls.csv"
    write_export(build_city(5), path, CALLS, years=1)
    return path


@pytest.fixture
def keyed(tmp_path: Path) -> Settings:
    """Settings with a real keyring (the linkage zone refuses the development one)."""
    return load_settings(data_dir=tmp_path / "var",
                         store_url=f"duckdb:///{(tmp_path / 'store').as_posix()}",
                         duckdb_memory_limit="1GB", classify_at_ingest=False,
                         field_keys={"k1": generate_key()}, search_key=generate_key(),
                         linkage_chunk_rows=500)


def phones_of(path: Path) -> dict[str, str]:
    """Incident number -> caller phone of every well-formed row with a phone."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["Incident Number"]: row["Caller Phone"] for row in csv.DictReader(handle)
                if row.get("Caller Phone") and None not in row}


def reformatted(src: Path, dst: Path, prefix: str) -> Path:
    """Another export of the same calls: new incident numbers, phones written (316) 555-0142."""
    con = duckdb.connect()
    con.execute(f"""
        COPY (SELECT * REPLACE ('{prefix}' || "Incident Number" AS "Incident Number",
                                regexp_replace("Caller Phone", '^(\\d{{3}})-', '(\\1) ')
                                    AS "Caller Phone")
              FROM read_csv('{src}', all_varchar = true, header = true, ignore_errors = true))
        TO '{dst}' (HEADER, DELIMITER ',')""").fetchall()
    con.close()
    return dst


def linkage_mapping() -> Mapping:
    return with_linkage(builtin_mapping("synthetic_cad"), ["Caller Phone"])


def stored_rows(settings: Settings) -> list[tuple[str, ...]]:
    db = settings.data_dir / "linkage" / "linkage.db"
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT source, source_record_id, column_name, kind, value_hash, "
                           "value_sealed, batch_id, state FROM linkage_values").fetchall()
    finally:
        con.close()


def test_phones_are_sealed_in_the_linkage_zone_and_nowhere_else(
        export: Path, keyed: Settings, caplog: pytest.LogCaptureFixture) -> None:
    store = open_analytic_store(keyed.resolved_store_url, keyed)
    with caplog.at_level(logging.DEBUG, logger="cswb"):
        summary = ingest_file(export, linkage_mapping(), store, keyed)
    phones = phones_of(export)
    distinct = set(phones.values())
    assert summary.reconciles and summary.linked > 0
    linked = stored_rows(keyed)
    assert len(linked) == summary.linked
    stored_ids = {r for (r,) in rows(store, "SELECT source_record_id FROM calls")}
    assert {r[1] for r in linked} <= stored_ids
    # every stored call whose row has a phone is linked, and to that phone
    keyring = linkage_keyring(keyed)
    expected = {rid: phone for rid, phone in phones.items() if rid in stored_ids}
    assert {r[1] for r in linked} == set(expected)
    for source, rid, column, kind, digest, sealed, _batch, state in linked[:200]:
        assert (source, column, kind, state) == ("synthetic_cad", "Caller Phone", "phone",
                                                 COMMITTED)
        assert keyring.decrypt(sealed, context(source, rid, column)) == expected[rid]
        assert digest == value_hash(keyring, expected[rid], "phone")
        with pytest.raises(CryptoError):  # bound to its record: moved, it does not open
            keyring.decrypt(sealed, context(source, rid + "x", column))
    # the linkage zone holds identifiers only: no call content
    assert {c.name for c in linkage_values.columns} == {
        "id", "source", "source_record_id", "column_name", "kind", "value_hash",
        "value_sealed", "key_id", "batch_id", "hash_key_id", "state", "linked_at"}
    # no phone in plain text anywhere: analytic store, linkage database, logs
    digits = {re.sub(r"\D", "", p) for p in distinct}
    for path in [*store.root.rglob("*"), *(keyed.data_dir / "linkage").rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert not any(p.encode() in data for p in distinct), path
    # (the Parquet files are compressed: their bytes prove nothing, so read every table back)
    for view in ("calls", "quarantine", "call_quality", "call_changes", "batches"):
        text = " ".join(str(v) for row in rows(store, f"SELECT * FROM {view}") for v in row)
        assert not any(p in text for p in distinct), view
    assert caplog.records  # the batch was logged...
    assert not any(p in caplog.text or d in caplog.text for p in distinct for d in digits)


def test_quarantined_rows_keep_no_identifying_values(export: Path, keyed: Settings) -> None:
    store = open_analytic_store(keyed.resolved_store_url, keyed)
    summary = ingest_file(export, linkage_mapping(), store, keyed)
    assert summary.quarantined > 0
    quarantined = rows(store, "SELECT reason, CAST(record AS VARCHAR), raw_text FROM quarantine")
    assert {r[0] for r in quarantined} >= {"too_many_columns", "missing_columns"}
    phones = set(phones_of(export).values())
    assert any(raw and "[withheld]" in raw for _r, _rec, raw in quarantined)  # withheld, not kept
    for _reason, record, raw in quarantined:
        for text in (record or "", raw or ""):
            assert "Caller Phone" not in text
            assert not any(p in text for p in phones)


def test_same_phone_hashes_the_same_across_batches_and_reingest_adds_nothing(
        export: Path, keyed: Settings, tmp_path: Path) -> None:
    store = open_analytic_store(keyed.resolved_store_url, keyed)
    first = ingest_file(export, linkage_mapping(), store, keyed)
    second_file = reformatted(export, tmp_path / "second.csv", "B-")
    second = ingest_file(second_file, linkage_mapping(), store, keyed)
    assert second.linked == first.linked
    linked = stored_rows(keyed)
    by_record = {(r[1]): r[4] for r in linked}
    pairs = [(rid, "B-" + rid) for rid in by_record if not rid.startswith("B-")]
    assert pairs and all(by_record[a] == by_record[b] for a, b in pairs
                         if b in by_record)
    assert sum(b in by_record for _, b in pairs) == len(pairs)
    linkage = open_linkage_store(keyed)
    shared = linkage.shared_values(min_records=2)
    one_hash = by_record[pairs[0][0]]
    batches = {r.batch_id for r in linkage.records_with(one_hash)}
    assert batches == {first.batch_id, second.batch_id}
    assert one_hash in shared
    before = sorted(stored_rows(keyed))
    again = ingest_file(export, linkage_mapping(), store, keyed)
    assert again.linked == 0 and again.unchanged == first.inserted
    assert sorted(stored_rows(keyed)) == before
    assert linkage.status()[0].values == len(before)
    linkage.dispose()


def test_refused_without_a_keyring_in_development_too(export: Path, settings: Settings,
                                                      store: AnalyticStore) -> None:
    assert settings.environment == "development" and not settings.field_keys
    with pytest.raises(LinkageError, match="cswb keys generate"):
        ingest_file(export, linkage_mapping(), store, settings)
    assert store.read_manifest().version == 0
    assert not (settings.data_dir / "linkage").exists()
    # the platform's public development keyring still serves the rest of the platform
    assert Keyring.from_settings(settings).current_id == "dev"


def test_error_messages_name_columns_never_phones(export: Path, keyed: Settings) -> None:
    store = open_analytic_store(keyed.resolved_store_url, keyed)
    mapping = linkage_mapping()
    bad = mapping.model_copy(update={"fields": {**mapping.fields, "district": "No Such"}})
    with pytest.raises(MappingError) as caught:
        ingest_file(export, bad, store, keyed)
    message = str(caught.value)
    assert "No Such" in message and "Incident Number" in message  # columns, by name
    assert not any(p in message for p in phones_of(export).values())
    assert store.read_manifest().version == 0 and stored_rows(keyed) == []


def test_only_dropped_identifying_columns_can_be_linked() -> None:
    with pytest.raises(MappingError, match="only columns the mapping drops"):
        with_linkage(builtin_mapping("synthetic_cad"), ["Address"])
    assert with_linkage(builtin_mapping("synthetic_cad"), []).identifying.linkage == []


def test_recovery_keeps_committed_batches_and_deletes_failed_ones(keyed: Settings) -> None:
    linkage = open_linkage_store(keyed)
    keyring = linkage_keyring(keyed)

    phone_hash = value_hash(keyring, "316-555-0100", "phone") or ""

    def row(rid: str, batch: str) -> tuple[str, ...]:
        return ("s", rid, "Caller Phone", "phone", phone_hash,
                keyring.encrypt("316-555-0100", context("s", rid, "Caller Phone")),
                keyring.current_id, batch, keyring.search_current_id)

    assert linkage.write_pending([[row("1", "held"), row("2", "held")], [row("3", "failed")]]) \
        == 3
    assert linkage.status() == [] and linkage.pending_rows() == 3
    assert linkage.recover({"held", "other"}) == (2, 1)
    assert linkage.pending_rows() == 0
    assert [r.source_record_id for r in linkage.records_with(phone_hash)] == ["1", "2"]
    linkage.dispose()


def test_missing_linkage_column_is_a_clear_error(tmp_path: Path, keyed: Settings) -> None:
    store = open_analytic_store(keyed.resolved_store_url, keyed)
    path = tmp_path / "no_phone.csv"
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT 'X1' AS "Incident Number") TO '{path}' (HEADER)""").fetchall()
    con.close()
    with pytest.raises(MappingError, match=r"\['Caller Phone'\] to the linkage zone"):
        ingest_file(path, linkage_mapping(), store, keyed)
    assert store.read_manifest().version == 0
    assert stored_rows(keyed) == []


KILL_SCRIPT = """
import json, sys
from pathlib import Path
from cswb.settings import load_settings
from cswb.storage import open_analytic_store
from cswb.ingest.mapping import builtin_mapping, with_linkage
from cswb.ingest.pipeline import ingest_file
settings = load_settings(**json.loads(sys.argv[1]))
store = open_analytic_store(settings.resolved_store_url, settings)
mapping = with_linkage(builtin_mapping("synthetic_cad"), ["Caller Phone"])
print(ingest_file(Path(sys.argv[2]), mapping, store, settings).linked)
"""


def kill_settings(settings: Settings, root: Path) -> dict[str, object]:
    return {"data_dir": str(root / "var"), "store_url": f"duckdb:///{(root / 'store').as_posix()}",
            "duckdb_memory_limit": "1GB", "classify_at_ingest": False,
            "linkage_chunk_rows": 200, "search_key": settings.search_key.get_secret_value()
            if settings.search_key else None,
            "field_keys": {k: v.get_secret_value() for k, v in settings.field_keys.items()}}


def start(overrides: dict[str, object], path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, json.dumps(overrides),
                             str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def committed_rows(settings: Settings) -> list[tuple[str, ...]]:
    return sorted(r for r in stored_rows(settings) if r[7] == COMMITTED)


def settle(store: AnalyticStore, settings: Settings) -> None:
    """What every linkage writer (and `cswb linkage status`) does first, under the lock."""
    linkage = open_linkage_store(settings)
    with store.transaction():
        linkage.recover(f["batch_id"] for f in store.read_manifest().files("batches"))
    linkage.dispose()


@pytest.mark.slow
def test_sigkill_leaves_no_identifiers_of_a_failed_batch(keyed: Settings, tmp_path: Path,
                                                         export: Path) -> None:
    big = tmp_path / "big.csv"
    write_export(build_city(5), big, 40_000, years=1, last_year=2023)
    scratch = kill_settings(keyed, tmp_path / "scratch")
    started = time.monotonic()
    probe = start(scratch, big)
    out, err = probe.communicate(timeout=600)
    assert probe.returncode == 0, err.decode()
    duration, expected_linked = time.monotonic() - started, int(out.decode().split()[-1])
    overrides = kill_settings(keyed, tmp_path)
    settings = load_settings(**overrides)
    store = open_analytic_store(settings.resolved_store_url, settings)
    ingest_file(export, linkage_mapping(), store, settings)
    before, linked_before = table_digest(store), committed_rows(settings)
    version = store.read_manifest().version
    killed_with_pending = 0

    def kill(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)

    for fraction in (None, 0.2, 0.5, 0.8):
        proc = start(overrides, big)
        if fraction is None:  # the moment the batch's identifiers are written, pending
            while proc.poll() is None and not _pending(settings):
                time.sleep(0.002)
        else:
            time.sleep(duration * fraction)
        kill(proc)
        if store.read_manifest().version != version:
            break  # it committed before the kill: checked below
        killed_with_pending += _pending(settings)
        assert table_digest(store) == before, fraction
        assert committed_rows(settings) == linked_before, fraction
        settle(store, settings)
        assert sorted(stored_rows(settings)) == linked_before, fraction  # pending gone
    assert killed_with_pending >= 1
    # killed just after the analytic store committed: the next writer commits its identifiers
    proc = start(overrides, big)
    while proc.poll() is None and store.read_manifest().version == version:
        time.sleep(0.005)
    kill(proc)
    settle(store, settings)
    held = {f["batch_id"] for f in store.read_manifest().files("batches")}
    linked = stored_rows(settings)
    assert {r[6] for r in linked} <= held and all(r[7] == COMMITTED for r in linked)
    if store.read_manifest().version == version:  # killed before its commit after all
        ingest_file(big, linkage_mapping(), store, settings)
    new = [r for r in stored_rows(settings) if r[6] not in {x[6] for x in linked_before}]
    assert len(new) == expected_linked
    ids = {r for (r,) in rows(store, "SELECT source_record_id FROM calls")}
    assert {r[1] for r in stored_rows(settings)} <= ids


def _pending(settings: Settings) -> bool:
    """Whether the linkage store holds pending rows (False while it does not exist yet)."""
    db = settings.data_dir / "linkage" / "linkage.db"
    if not db.exists():
        return False
    try:
        con = sqlite3.connect(db, timeout=0.5)
        try:
            return bool(con.execute("SELECT count(*) FROM linkage_values WHERE state = ?",
                                    [PENDING]).fetchone()[0])
        finally:
            con.close()
    except sqlite3.OperationalError:  # being created by the writer this instant
        return False
