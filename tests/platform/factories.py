"""Factories for platform tests: keys, agencies, users of every role, cases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cswb.cases import service
from cswb.domain.cases import AgencyKind, CaseStatus, InvolvementRole, Role, SubjectType
from cswb.security.accounts import create_agency, create_user, principal_of
from cswb.security.crypto import generate_key
from cswb.security.principal import SYSTEM, Actor
from cswb.storage.operational import OperationalStore

PASSWORD = "correct horse battery staple"
AGENCIES = (("police", "Riverton Police Service", AgencyKind.POLICE),
            ("housing", "Riverton Housing", AgencyKind.HOUSING),
            ("health", "Riverton Health", AgencyKind.MENTAL_HEALTH_ADDICTIONS))


def fresh_keys(key_ids: tuple[str, ...] = ("k1",)) -> dict[str, Any]:
    """Settings overrides with freshly generated keys."""
    return {"field_keys": {key_id: generate_key() for key_id in key_ids},
            "search_key": generate_key(), "secret_key": generate_key()}


@dataclass
class World:
    """Who exists in a test: ``actors[(agency, role)]``."""

    store: OperationalStore
    actors: dict[tuple[str, Role], Actor] = field(default_factory=dict)
    usernames: dict[tuple[str, Role], str] = field(default_factory=dict)

    def actor(self, agency: str, role: Role, basis: str = "") -> Actor:
        return self.actors[(agency, role)].because(basis)


def build_world(store: OperationalStore) -> World:
    world = World(store)
    admin = Actor(SYSTEM, "test")
    with store.session() as session:
        for code, name, kind in AGENCIES:
            create_agency(session, code, name, kind)
            for role in Role:
                username = f"{code}.{role.value}"
                user = create_user(session, admin, username, agency_code=code, role=role)
                world.actors[(code, role)] = Actor(principal_of(user), "127.0.0.1")
                world.usernames[(code, role)] = username
    return world


def open_case_as(world: World, agency: str = "police", *,
                 status: CaseStatus = CaseStatus.PRESENTED,
                 also: tuple[str, ...] = ()) -> str:
    """A case presented by ``agency``, moved to ``status``, with more agencies involved."""
    chair = world.actor(agency, Role.TABLE_CHAIR)
    with world.store.session() as session:
        case = service.open_case(session, chair, SubjectType.PERSON, "repeated crises at home")
        for other in also:
            service.involve_agency(session, chair, case.id, expected_version=case.version,
                                   agency_code=other, involvement=InvolvementRole.ASSISTING)
        path = {CaseStatus.PRESENTED: [], CaseStatus.AER: [CaseStatus.AER],
                CaseStatus.PLANNING: [CaseStatus.AER, CaseStatus.PLANNING],
                CaseStatus.CONCLUDED: [CaseStatus.AER, CaseStatus.CONCLUDED],
                CaseStatus.NOT_AER: [CaseStatus.NOT_AER]}[status]
        for step in path:
            service.change_status(session, chair, case.id, expected_version=case.version,
                                  target=step)
        return case.id


def cli_env(settings: Any) -> dict[str, str]:
    """Environment for running ``cswb`` with exactly these settings' store and keys."""
    import json

    return {"CSWB_ENVIRONMENT": settings.environment,
            "CSWB_DATA_DIR": str(settings.data_dir),
            "CSWB_OPERATIONAL_URL": settings.resolved_operational_url,
            "CSWB_LINKAGE_URL": settings.resolved_linkage_url,
            "CSWB_FIELD_KEYS": json.dumps({k: v.get_secret_value()
                                           for k, v in settings.field_keys.items()}),
            "CSWB_SEARCH_KEY": settings.search_key.get_secret_value(),
            "CSWB_SECRET_KEY": settings.secret_key.get_secret_value()}


def token_for(world: World, agency: str, role: Role, settings: Any) -> str:
    """A bearer token for the world's user of ``role`` in ``agency``."""
    from sqlalchemy import select

    from cswb.security.accounts import issue_token
    from cswb.storage.operational.models import User

    with world.store.session() as session:
        user = session.scalars(select(User).where(
            User.username == world.usernames[(agency, role)])).one()
        return issue_token(session, user, "bearer", settings)


def bearer(token: str, basis: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if basis:
        headers["X-Access-Basis"] = basis
    return headers
