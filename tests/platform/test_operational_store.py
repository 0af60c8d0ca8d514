"""The operational store: migrations, optimistic concurrency, the minimal case record."""

from __future__ import annotations

from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text

from cswb.api.case_models import CaseOut
from cswb.cases import service
from cswb.domain.cases import TRANSITIONS, CaseStatus, InvolvementRole, Role, SubjectType
from cswb.errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    StoreError,
)
from cswb.security.policy import Action
from cswb.settings import Settings, load_settings
from cswb.storage.operational import OperationalStore, open_operational_store
from cswb.storage.operational.engine import HEAD_REVISION, own_table
from cswb.storage.operational.models import Base, Case
from tests.platform.factories import World, open_case_as

IDENTITY = service.Identity("Jordan Example", date(1990, 4, 2), "12 Main St, Riverton")


def test_models_and_migrations_agree(ops: OperationalStore) -> None:
    with ops.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": own_table}), Base.metadata)
    assert diff == [], f"models differ from the migrations: {diff}"
    assert ops.current_revision() == HEAD_REVISION


def test_upgrade_is_idempotent_and_required(ops: OperationalStore, tmp_path) -> None:
    ops.upgrade()
    ops.require_current()
    empty = open_operational_store(load_settings(
        operational_url=f"sqlite:///{tmp_path / 'empty.db'}"))
    with pytest.raises(StoreError, match="cswb db upgrade"):
        empty.require_current()


def test_unknown_url_scheme_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="supports sqlite and postgresql"):
        open_operational_store(load_settings(operational_url="mysql://x@y/z"))
    with pytest.raises(StoreError, match="not a database URL"):
        open_operational_store(load_settings(operational_url="not a url"))


def test_case_follows_the_transition_table(world: World) -> None:
    case_id = open_case_as(world, "police", also=("housing",))
    chair = world.actor("police", Role.TABLE_CHAIR)
    with world.store.session() as session:
        case = service.read_case(session, chair, case_id)
        assert case.status == "presented" and case.version == 2
        with pytest.raises(InvalidTransitionError, match="presented to concluded"):
            service.change_status(session, chair, case_id, expected_version=case.version,
                                  target=CaseStatus.CONCLUDED)
    for status, allowed in TRANSITIONS.items():
        assert status not in allowed, "no status moves to itself"
    with world.store.session() as session:
        case = service.change_status(session, chair, case_id, expected_version=2,
                                     target=CaseStatus.AER)
        case = service.change_status(session, chair, case_id, expected_version=case.version,
                                     target=CaseStatus.CONCLUDED,
                                     conclusion="risk_lowered_connected")
        assert case.closed_at is not None and case.conclusion == "risk_lowered_connected"
        with pytest.raises(InvalidTransitionError):
            service.change_status(session, chair, case_id, expected_version=case.version,
                                  target=CaseStatus.PLANNING)
    with world.store.session() as session:
        kinds = [(e.kind, e.actor_id is not None) for e in
                 service.timeline(session, chair, case_id)]
    assert kinds == [("opened", True), ("agency_involved", True), ("status_changed", True),
                     ("status_changed", True)]


def test_stale_version_is_a_conflict(world: World) -> None:
    case_id = open_case_as(world, "police")
    chair = world.actor("police", Role.TABLE_CHAIR)
    rep = world.actor("police", Role.AGENCY_REPRESENTATIVE)
    with world.store.session() as session:
        version = service.read_case(session, chair, case_id).version
    with world.store.session() as session:
        service.change_status(session, chair, case_id, expected_version=version,
                              target=CaseStatus.AER)
    with pytest.raises(ConflictError, match=f"not {version}"), world.store.session() as session:
        service.change_status(session, rep, case_id, expected_version=version,
                              target=CaseStatus.NOT_AER)
    with world.store.session() as session:
        assert service.read_case(session, chair, case_id).status == "aer"


def test_concurrent_flush_is_a_conflict(world: World, backend: str) -> None:
    """Two sessions hold the same version; the second flush loses (SQLAlchemy's version id).

    On SQLite every transaction takes the write lock when it begins, so two writers queue and
    this race cannot happen; the version check below still applies.
    """
    case_id = open_case_as(world, "police")
    if backend == "postgresql":
        _two_writers(world, case_id)
    with pytest.raises(ConflictError), world.store.session() as session:
        stale = session.get(Case, case_id)
        assert stale is not None
        session.execute(text("UPDATE cases SET version = version + 1 WHERE id = :id"),
                        {"id": case_id})
        stale.summary = "third writer"


def _two_writers(world: World, case_id: str) -> None:
    first = world.store.sessions()
    second = world.store.sessions()
    try:
        one = first.get(Case, case_id)
        two = second.get(Case, case_id)
        assert one is not None and two is not None
        one.summary = "first writer"
        first.commit()
        two.summary = "second writer"
        with pytest.raises(Exception, match="expected to update 1 row"):
            second.commit()
    finally:
        first.close()
        second.close()


def test_identity_is_encrypted_at_rest_and_bound_to_status(world: World,
                                                           platform_settings: Settings) -> None:
    from cswb.security.crypto import Keyring

    keyring = Keyring.from_settings(platform_settings)
    case_id = open_case_as(world, "police", also=("housing",))
    chair = world.actor("police", Role.TABLE_CHAIR, basis="planning the joint visit")
    with pytest.raises(InvalidTransitionError, match="only while a case is aer"), \
            world.store.session() as session:
        service.set_identity(session, chair, keyring, case_id, IDENTITY)
    with world.store.session() as session:
        case = service.read_case(session, chair, case_id)
        service.change_status(session, chair, case_id, expected_version=case.version,
                              target=CaseStatus.AER)
        service.set_identity(session, chair, keyring, case_id, IDENTITY)
    with world.store.engine.connect() as connection:
        raw = " ".join(str(v) for row in connection.execute(
            text("SELECT * FROM case_identities")) for v in row)
        events = " ".join(str(v) for row in connection.execute(
            text("SELECT * FROM case_events")) for v in row)
    # whole values: a fragment as short as "1990" turns up in random ciphertext now and then
    for secret in ("Jordan", "1990-04-02", "1990, 4, 2", "04/02/1990", "Main St"):
        assert secret not in raw and secret not in events
    assert "v1:k1:" in raw
    housing = world.actor("housing", Role.AGENCY_REPRESENTATIVE, basis="joint visit")
    with world.store.session() as session:
        assert service.read_identity(session, housing, keyring, case_id) == IDENTITY
        assert service.find_by_name(session, housing, keyring, "  jordan   EXAMPLE") == [case_id]
        assert service.find_by_name(session, housing, keyring, "Jordan Exampel") == []


def test_withdrawn_agency_loses_access(world: World, platform_settings: Settings) -> None:
    case_id = open_case_as(world, "police", status=CaseStatus.AER, also=("housing",))
    chair = world.actor("police", Role.TABLE_CHAIR)
    housing = world.actor("housing", Role.AGENCY_REPRESENTATIVE)
    with world.store.session() as session:
        version = service.read_case(session, housing, case_id).version
        service.withdraw_agency(session, chair, case_id, expected_version=version,
                                agency_code="housing")
    with pytest.raises(NotFoundError), world.store.session() as session:
        service.read_case(session, housing, case_id)
    with world.store.session() as session:
        assert [c.id for c in service.list_cases(session, housing)] == []
        case = service.involve_agency(session, chair, case_id,
                                      expected_version=service.read_case(
                                          session, chair, case_id).version,
                                      agency_code="housing", involvement=InvolvementRole.LEAD)
        assert sorted(service.active_agencies(case)) == sorted(
            [world.actor("police", Role.TABLE_CHAIR).principal.agency_id,
             housing.principal.agency_id])
    with world.store.session() as session:
        assert [c.id for c in service.list_cases(session, housing)] == [case_id]


def test_case_rows_are_listed_with_a_real_query(world: World) -> None:
    open_case_as(world, "police")
    open_case_as(world, "housing")
    with world.store.session() as session:
        assert len(session.scalars(select(Case)).all()) == 2
        police = service.list_cases(session, world.actor("police", Role.NAVIGATOR))
        assert len(police) == 1 and police[0].subject_type == SubjectType.PERSON.value


def test_the_core_read_and_edit_agree_with_the_orm_case(world: World) -> None:
    # The hot paths read and edit with Core SQL; the other services use ORM objects. Both
    # must show the same case: agencies (one that left included), status, version, summary.
    case_id = open_case_as(world, "police", also=("housing", "health"))
    chair = world.actor("police", Role.TABLE_CHAIR)
    with world.store.session() as session:
        version = service.read_case(session, chair, case_id).version
        service.withdraw_agency(session, chair, case_id, expected_version=version,
                                agency_code="health")
    with world.store.session() as session:
        before = service.read_case(session, chair, case_id)
        edited = service.edit_summary(session, chair, case_id, expected_version=before.version,
                                      summary="edited through Core")
    with world.store.sessions() as session:
        orm = service.load_case(session, chair, case_id, Action.CASE_READ)
        via_orm = CaseOut.of(orm)
    via_core = CaseOut.of(edited)
    assert edited.version == before.version + 1 == orm.version
    assert via_core.model_dump(exclude={"agencies"}) == via_orm.model_dump(exclude={"agencies"})
    assert sorted(via_core.agencies, key=lambda a: a.agency) == \
        sorted(via_orm.agencies, key=lambda a: a.agency)
    assert [a.agency for a in via_core.agencies if a.left_at is not None] == ["health"]
    with world.store.session() as session, pytest.raises(ConflictError):
        service.edit_summary(session, chair, case_id, expected_version=before.version,
                             summary="a stale edit")
    with world.store.sessions() as session:
        kinds = [e.kind for e in service.timeline(session, chair, case_id)]
    assert kinds.count("summary_edited") == 1
