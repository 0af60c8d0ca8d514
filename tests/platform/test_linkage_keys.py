"""The linkage zone's values under key rotation (field key and search key) and retention.

The linkage store is SQLite under the test's data_dir; the operational store, which holds the
audit entries, runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cswb.cli.main import app
from cswb.errors import PermissionDeniedError
from cswb.linkage.keys import key_usage, rehash_values
from cswb.linkage.store import LinkageStore, linkage_values, open_linkage_store
from cswb.linkage.values import context, value_hash, value_hashes
from cswb.security.crypto import Keyring, generate_key
from cswb.security.keys import rehash_linkage, rotate_linkage
from cswb.security.principal import SYSTEM, Actor
from cswb.security.retention import run_retention
from cswb.settings import Settings, load_settings
from cswb.storage.operational.models import AuditEntry, utcnow
from tests.platform.factories import World, cli_env

ADMIN = Actor(SYSTEM, "test")
PHONES = [f"316-555-{i:04d}" for i in range(30)]


def _link(linkage: LinkageStore, ring: Keyring, batch: str, records: range) -> dict[str, str]:
    """One committed batch: record i holds PHONES[i % 30]; returns record -> phone."""
    held = {}
    rows = []
    for i in records:
        rid, phone = f"R{i}", PHONES[i % len(PHONES)]
        rows.append(("cad", rid, "Caller Phone", "phone", value_hash(ring, phone, "phone"),
                     ring.encrypt(phone, context("cad", rid, "Caller Phone")),
                     ring.current_id, batch, ring.search_current_id))
        held[rid] = phone
    linkage.write_pending([rows])
    linkage.commit_batch(batch)
    return held


def _new_keys(settings: Settings) -> Settings:
    extra = load_settings(field_keys={"k2": generate_key()}, search_keys={"s1": generate_key()})
    return settings.model_copy(update={
        "field_keys": {**settings.field_keys, **extra.field_keys}, "field_key_current": "k2",
        "search_keys": extra.search_keys, "search_key_current": "s1"})


def _open_all(linkage: LinkageStore, ring: Keyring, held: dict[str, str]) -> None:
    for rid, phone in held.items():
        (column, _kind, sealed), = linkage.sealed_values("cad", rid)
        assert ring.decrypt(sealed, context("cad", rid, column)) == phone


@pytest.fixture
def linkage(platform_settings: Settings) -> LinkageStore:
    store = open_linkage_store(platform_settings)
    yield store
    store.dispose()


def test_rotation_and_rehash_while_reads_and_searches_keep_working(
        world: World, platform_settings: Settings, linkage: LinkageStore) -> None:
    old = Keyring.from_settings(platform_settings)
    held = _link(linkage, old, "b1", range(90))
    new = Keyring.from_settings(_new_keys(platform_settings))
    failures: list[BaseException] = []
    rounds = 0
    done = threading.Event()

    def reader() -> None:
        nonlocal rounds
        while not done.is_set():
            try:
                _open_all(linkage, new, dict(list(held.items())[::9]))
                found = linkage.records_with(value_hashes(new, "(316) 555 0007", "phone"))
                assert sorted(r.source_record_id for r in found) == ["R37", "R67", "R7"]
                rounds += 1
            except BaseException as exc:  # report in the main thread
                failures.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        rotated = rotate_linkage(world.store, linkage, new, ADMIN, batch_size=7)
        rehashed = rehash_linkage(world.store, linkage, new, ADMIN, batch_size=7)
    finally:
        done.set()
        thread.join()
    assert not failures, failures[0]
    assert rounds > 0
    assert (rotated.current_key, rotated.changed, rotated.batches) == ("k2", 90, 13)
    assert (rehashed.current_key, rehashed.changed, rehashed.merged) == ("s1", 90, 0)
    assert key_usage(linkage) == ({"k2": 90}, {"s1": 90})
    # idempotent; and only the new keys are needed from now on
    assert rotate_linkage(world.store, linkage, new, ADMIN).changed == 0
    assert rehash_linkage(world.store, linkage, new, ADMIN).changed == 0
    only_new = Keyring({"k2": new.keys["k2"]}, "k2", new.search_key, {"s1": new.search_key},
                       "s1")
    _open_all(linkage, only_new, held)
    assert len(linkage.records_with(value_hash(only_new, PHONES[3], "phone") or "")) == 3
    assert linkage.records_with(value_hash(old, PHONES[3], "phone") or "") == []
    with world.store.sessions() as session:
        actions = session.scalars(select(AuditEntry.action)
                                  .where(AuditEntry.object_type == "linkage_values")).all()
    assert actions.count("keys.rotate") == 13 and actions.count("keys.rehash") == 13


def test_rehash_merges_a_value_linked_again_under_the_new_key(
        platform_settings: Settings, linkage: LinkageStore) -> None:
    old = Keyring.from_settings(platform_settings)
    _link(linkage, old, "b1", range(4))
    new = Keyring.from_settings(_new_keys(platform_settings))
    _link(linkage, new, "b2", range(2, 6))  # R2, R3 linked again during the rotation
    twice = linkage.records_with(value_hashes(new, PHONES[2], "phone"))
    assert sorted((r.source_record_id, r.batch_id) for r in twice) == [("R2", "b1"),
                                                                        ("R2", "b2")]
    report = rehash_values(linkage, new)
    assert (report.changed, report.merged) == (4, 2)
    once = linkage.records_with(value_hashes(new, PHONES[2], "phone"))
    assert [(r.source_record_id, r.batch_id) for r in once] == [("R2", "b2")]
    with linkage.engine.connect() as con:
        rows = con.execute(select(linkage_values.c.source_record_id,
                                  linkage_values.c.hash_key_id)).all()
    assert sorted(rows) == [(f"R{i}", "s1") for i in range(6)]


def test_only_administrators_rotate_linkage_keys(world: World, platform_settings: Settings,
                                                 linkage: LinkageStore) -> None:
    from cswb.domain.cases import Role

    ring = Keyring.from_settings(platform_settings)
    with pytest.raises(PermissionDeniedError):
        rotate_linkage(world.store, linkage, ring, world.actor("police", Role.TABLE_CHAIR))
    with pytest.raises(PermissionDeniedError):
        rehash_linkage(world.store, linkage, ring, world.actor("police", Role.TABLE_CHAIR))


def test_a_store_made_before_search_key_ids_gets_the_column(tmp_path) -> None:
    path = tmp_path / "linkage" / "linkage.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as con:  # the table as the first release created it
        con.execute("CREATE TABLE linkage_values (id INTEGER PRIMARY KEY, source VARCHAR(63) "
                    "NOT NULL, source_record_id VARCHAR(255) NOT NULL, column_name VARCHAR(255) "
                    "NOT NULL, kind VARCHAR(16) NOT NULL, value_hash VARCHAR(64) NOT NULL, "
                    "value_sealed TEXT NOT NULL, key_id VARCHAR(64) NOT NULL, batch_id "
                    "VARCHAR(40) NOT NULL, state VARCHAR(10) NOT NULL, linked_at DATETIME "
                    "NOT NULL)")
        con.execute("INSERT INTO linkage_values VALUES (1, 'cad', 'R1', 'Caller Phone', "
                    "'phone', 'h', 'v1:k1:x', 'k1', 'b1', 'committed', '2026-01-01')")
    store = open_linkage_store(load_settings(data_dir=tmp_path))
    try:
        assert key_usage(store) == ({"k1": 1}, {"s0": 1})
    finally:
        store.dispose()


def test_retention_deletes_old_values_once_and_audits_each_batch(
        world: World, platform_settings: Settings, linkage: LinkageStore) -> None:
    ring = Keyring.from_settings(platform_settings)
    _link(linkage, ring, "b1", range(10))
    _link(linkage, ring, "b2", range(10, 15))
    days = platform_settings.retention_linkage_days
    early = run_retention(world.store, platform_settings, ADMIN,
                          now=utcnow() + timedelta(days=days - 1))
    assert [(r.record_type, r.purged) for r in early][-1] == ("linkage values", 0)
    later = utcnow() + timedelta(days=days, seconds=1)
    due = run_retention(world.store, platform_settings, ADMIN, now=later, dry_run=True)
    assert (due[-1].due, due[-1].purged) == (15, 0)
    assert run_retention(world.store, platform_settings, ADMIN, now=later)[-1].purged == 15
    assert run_retention(world.store, platform_settings, ADMIN, now=later)[-1].purged == 0
    assert linkage.status() == [] and key_usage(linkage) == ({}, {})
    with world.store.sessions() as session:
        purged = session.scalars(select(AuditEntry.object_id)
                                 .where(AuditEntry.object_type == "linkage_batch")).all()
    assert sorted(purged) == ["b1", "b2"]


def test_cli_rotate_covers_linkage_values(world: World, platform_settings: Settings,
                                          linkage: LinkageStore) -> None:
    held = _link(linkage, Keyring.from_settings(platform_settings), "b1", range(5))
    rotated = _new_keys(platform_settings)
    env = {**cli_env(platform_settings),
           "CSWB_FIELD_KEYS": json.dumps({k: v.get_secret_value()
                                          for k, v in rotated.field_keys.items()}),
           "CSWB_FIELD_KEY_CURRENT": "k2",
           "CSWB_SEARCH_KEYS": json.dumps({k: v.get_secret_value()
                                           for k, v in rotated.search_keys.items()})}
    runner = CliRunner()
    result = runner.invoke(app, ["keys", "rotate"], env=env)
    assert result.exit_code == 0, result.output
    assert "Re-sealed 5 linkage values under key 'k2' in 1 batches." in result.output
    result = runner.invoke(app, ["keys", "rehash"], env=env)
    assert result.exit_code == 0, result.output
    assert "Rehashed 5 linkage values under search key 's1'" in result.output
    status = runner.invoke(app, ["keys", "status"], env=env)
    assert status.exit_code == 0, status.output
    _open_all(linkage, Keyring.from_settings(rotated), held)
    assert key_usage(linkage) == ({"k2": 5}, {"s1": 5})
