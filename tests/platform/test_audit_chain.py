"""The audit chain: every kind of tampering is found and located; sealing keeps up."""

from __future__ import annotations

import threading

from sqlalchemy import func, select, text
from typer.testing import CliRunner

from cswb.audit import record, seal_pending, verify
from cswb.audit.chain import entry_hash
from cswb.cases import service
from cswb.cli.main import app
from cswb.domain.cases import Role
from cswb.errors import AuditChainError
from cswb.settings import Settings
from cswb.storage.operational import OperationalStore
from cswb.storage.operational.models import AuditEntry
from tests.platform.factories import World, cli_env, open_case_as


def _fill(world: World, reads: int = 10) -> None:
    case_id = open_case_as(world, "police")
    for _ in range(reads):
        with world.store.session() as session:
            service.read_case(session, world.actor("police", Role.NAVIGATOR), case_id)
    seal_pending(world.store)


def _sql(store: OperationalStore, statement: str, **params: object) -> None:
    with store.engine.begin() as connection:
        connection.execute(text(statement), params)


def test_intact_chain_verifies_and_records_who_what_where_why(world: World) -> None:
    _fill(world)
    report = verify(world.store)
    assert report.intact and report.checked == report.head_seq > 10 and report.unsealed == 0
    with world.store.sessions() as session:
        read = session.scalars(select(AuditEntry).where(AuditEntry.action == "case.read")
                               .limit(1)).one()
    assert (read.actor, read.agency, read.source, read.object_type) == \
        ("police.navigator", "police", "127.0.0.1", "case")


def test_edited_entry_is_found(world: World) -> None:
    _fill(world)
    _sql(world.store, "UPDATE audit_entries SET actor = 'someone.else' WHERE seq = 5")
    (problem,) = verify(world.store).breaks
    assert problem.seq == 5 and "edited" in problem.problem


def test_deleted_entry_is_found(world: World) -> None:
    _fill(world)
    _sql(world.store, "DELETE FROM audit_entries WHERE seq = 6")
    (problem,) = verify(world.store).breaks
    assert problem.seq == 7 and "missing" in problem.problem and "6-6" in problem.problem


def test_inserted_entry_is_found(world: World) -> None:
    """An entry slipped in (positions shifted to make room) breaks the chain where it sits."""
    _fill(world)
    _sql(world.store, "UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 4")
    _sql(world.store, "UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1004")
    with world.store.session() as session:
        record(session, world.actor("police", Role.TABLE_CHAIR), "case.read", "case")
        forged = session.scalars(select(AuditEntry).where(AuditEntry.seq.is_(None))).one()
        forged.seq, forged.prev_hash = 4, "f" * 64
        forged.entry_hash = entry_hash(forged, forged.prev_hash)
    breaks = verify(world.store).breaks
    assert [b.seq for b in breaks] == [4, 5, None]  # None: the chain is longer than its head
    assert "does not follow" in breaks[0].problem


def test_reordered_entries_are_found(world: World) -> None:
    _fill(world)
    _sql(world.store, "UPDATE audit_entries SET seq = -1 WHERE seq = 3")
    _sql(world.store, "UPDATE audit_entries SET seq = 3 WHERE seq = 4")
    _sql(world.store, "UPDATE audit_entries SET seq = 4 WHERE seq = -1")
    breaks = verify(world.store).breaks
    assert [b.seq for b in breaks] == [3, 4, 5]
    assert all("does not follow" in b.problem for b in breaks)


def test_entries_cut_from_the_end_are_found(world: World) -> None:
    _fill(world)
    head = verify(world.store).head_seq
    _sql(world.store, "DELETE FROM audit_entries WHERE seq >= :cut", cut=head - 2)
    (problem,) = verify(world.store).breaks
    assert problem.seq is None and f"head records position {head}" in problem.problem


def test_cli_verify_says_where_the_chain_breaks(world: World,
                                                platform_settings: Settings) -> None:
    _fill(world)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"], env=cli_env(platform_settings))
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    _sql(world.store, "UPDATE audit_entries SET basis = 'curiosity' WHERE seq = 2")
    broken = runner.invoke(app, ["audit", "verify"], env=cli_env(platform_settings))
    assert "broken at position 2" in broken.output
    assert isinstance(broken.exception, AuditChainError)
    assert broken.exception.exit_code == 12 and "first at position 2" in str(broken.exception)


def test_concurrent_writers_and_sealers_make_one_intact_chain(world: World) -> None:
    case_id = open_case_as(world, "police")
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(25):
                with world.store.session() as session:
                    service.read_case(session, world.actor("police", Role.TABLE_CHAIR), case_id)
        except BaseException as exc:
            errors.append(exc)

    def sealer() -> None:
        try:
            for _ in range(20):
                seal_pending(world.store, batch_size=7, wait=False)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(6)]
    threads += [threading.Thread(target=sealer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    seal_pending(world.store)
    report = verify(world.store)
    with world.store.sessions() as session:
        total = session.scalar(select(func.count()).select_from(AuditEntry))
    assert report.intact and report.checked == total and total >= 150
