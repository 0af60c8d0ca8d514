"""The linkage zone's values under key rotation (field key and search key) and retention,
and its schema migrations.

Every test runs on SQLite (the linkage store's default file under data_dir) and on PostgreSQL
(the linkage schema beside the operational store's, in one database)."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from cswb.cli.main import app
from cswb.errors import PermissionDeniedError
from cswb.linkage.keys import key_usage, rehash_values
from cswb.linkage.store import (
    HEAD_REVISION,
    VERSION_TABLE,
    LinkageStore,
    linkage_values,
    metadata,
    open_linkage_store,
    own_table,
)
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
def linkage(platform_settings: Settings, backend: str) -> LinkageStore:
    store = open_linkage_store(platform_settings)
    if backend == "postgresql":  # the session's database is shared by the tests
        with store.engine.begin() as connection:
            connection.execute(text("TRUNCATE linkage_values RESTART IDENTITY"))
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
        assert store.revision() == HEAD_REVISION  # stamped as the first revision, upgraded
        assert "ix_linkage_linked_at" in {i["name"] for i in
                                          inspect(store.engine).get_indexes("linkage_values")}
    finally:
        store.dispose()


def test_a_store_made_by_create_all_with_key_ids_is_adopted_as_is(tmp_path) -> None:
    """The release before migrations created the current table: it is only stamped."""
    path = tmp_path / "linkage" / "linkage.db"
    path.parent.mkdir()
    engine = create_engine(f"sqlite:///{path}")
    linkage_values.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(linkage_values.insert().values(
            source="cad", source_record_id="R1", column_name="Caller Phone", kind="phone",
            value_hash="h", value_sealed="v1:k1:x", key_id="k1", batch_id="b1",
            hash_key_id="s1", state="committed", linked_at=utcnow()))
    engine.dispose()
    store = open_linkage_store(load_settings(data_dir=tmp_path))
    try:
        assert store.revision() == HEAD_REVISION
        assert key_usage(store) == ({"k1": 1}, {"s1": 1})
    finally:
        store.dispose()


def test_a_new_store_is_migrated_to_head_beside_the_operational_schema(
        linkage: LinkageStore, platform_settings: Settings, backend: str) -> None:
    assert linkage.revision() == HEAD_REVISION
    with linkage.engine.connect() as connection:  # the migrations build what the code reads
        diff = compare_metadata(MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": own_table}), metadata)
    assert diff == [], f"the table differs from the migrations: {diff}"
    tables = set(inspect(linkage.engine).get_table_names())
    assert {"linkage_values", VERSION_TABLE} <= tables
    if backend == "postgresql":  # one database, two schemas, two version tables
        assert {"alembic_version", "cases"} <= tables
        with linkage.engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")
                                      ).scalar_one() != HEAD_REVISION
    again = open_linkage_store(platform_settings)  # opening again changes nothing
    try:
        assert again.revision() == HEAD_REVISION
    finally:
        again.dispose()


@pytest.fixture
def new_store_settings(backend: str, tmp_path, request: pytest.FixtureRequest) -> Settings:
    """Settings naming a linkage store nobody has opened: a SQLite file, or a database of its
    own on the PostgreSQL server (dropped afterwards)."""
    if backend == "sqlite":
        return load_settings(data_dir=tmp_path)
    shared = make_url(request.getfixturevalue("postgres_url"))
    admin = create_engine(shared.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"{shared.database}_linkage_{uuid.uuid4().hex[:6]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    request.addfinalizer(drop)
    url = shared.set(database=name).render_as_string(hide_password=False)
    return load_settings(data_dir=tmp_path, linkage_url=url)


def test_openers_racing_on_a_new_store_all_succeed(new_store_settings: Settings) -> None:
    settings = new_store_settings
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            open_linkage_store(settings).dispose()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = open_linkage_store(settings)
    try:
        assert store.revision() == HEAD_REVISION
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
