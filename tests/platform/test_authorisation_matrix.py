"""Every route x every role x involved or not, through the real API, on both databases.

The expectations are written here, independently of :mod:`cswb.security.policy`: a change to
the policy that is not also a deliberate change to this table fails the test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cswb.cases import service
from cswb.domain.cases import CaseStatus, Role
from cswb.security.crypto import Keyring
from cswb.settings import Settings
from cswb.storage.operational.models import AuditEntry
from tests.platform.factories import World, bearer, open_case_as, token_for

CHAIR, REP, NAV = Role.TABLE_CHAIR, Role.AGENCY_REPRESENTATIVE, Role.NAVIGATOR
CASE_WORKERS = frozenset({CHAIR, REP, NAV})
IDENTITY_ROLES = frozenset({CHAIR, REP})


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    allowed: frozenset[Role]
    needs_involvement: bool
    success: int
    status: CaseStatus = CaseStatus.PRESENTED
    body: Callable[[int, int], dict[str, Any] | None] = lambda version, n: None
    public: bool = False
    """Answers without a login too (a public aggregate); a bad credential is still refused."""


ROUTES = (
    Route("list cases", "GET", "/api/v1/cases", CASE_WORKERS, False, 200),
    Route("open case", "POST", "/api/v1/cases", CASE_WORKERS, False, 201,
          body=lambda v, n: {"subject_type": "family", "summary": "eviction notice"}),
    Route("read case", "GET", "/api/v1/cases/{id}", CASE_WORKERS, True, 200),
    Route("timeline", "GET", "/api/v1/cases/{id}/events", CASE_WORKERS, True, 200),
    Route("add note", "POST", "/api/v1/cases/{id}/notes", CASE_WORKERS, True, 201,
          body=lambda v, n: {"note": "visit planned"}),
    Route("edit summary", "PATCH", "/api/v1/cases/{id}", IDENTITY_ROLES, True, 200,
          body=lambda v, n: {"version": v, "summary": "rent arrears"}),
    Route("change status", "POST", "/api/v1/cases/{id}/status", IDENTITY_ROLES, True, 200,
          body=lambda v, n: {"version": v, "status": "aer"}),
    Route("involve agency", "POST", "/api/v1/cases/{id}/agencies", frozenset({CHAIR}), True,
          200, body=lambda v, n: {"version": v, "agency": "health"}),
    Route("read identity", "GET", "/api/v1/cases/{id}/identity", IDENTITY_ROLES, True, 200,
          status=CaseStatus.AER),
    Route("write identity", "PUT", "/api/v1/cases/{id}/identity", IDENTITY_ROLES, True, 204,
          status=CaseStatus.AER, body=lambda v, n: {"name": "Sam Doe", "address": "1 Oak Ave"}),
    Route("search identity", "POST", "/api/v1/identity-search", IDENTITY_ROLES, False, 200,
          body=lambda v, n: {"name": "Sam Doe"}),
    Route("list users", "GET", "/api/v1/users", frozenset({Role.ADMINISTRATOR}), False, 200),
    Route("create user", "POST", "/api/v1/users", frozenset({Role.ADMINISTRATOR}), False, 201,
          body=lambda v, n: {"username": f"new.user{n}", "agency": "housing",
                             "role": "navigator"}),
    Route("who am I", "GET", "/api/v1/auth/me", frozenset(Role), False, 200),
    Route("repeat locations", "GET", "/api/v1/metrics/repeat-locations",
          frozenset({Role.ANALYST}), False, 200),
    # public after suppression for everyone; whole for analysts (test_api_analytics checks)
    Route("response times", "GET", "/api/v1/metrics/response-times",
          frozenset(Role), False, 200, public=True),
)


def expected(route: Route, role: Role, involved: bool) -> int:
    if role not in route.allowed:
        return 403
    if route.needs_involvement and not involved:
        return 404
    return route.success


def _case(world: World, keyring: Keyring, status: CaseStatus) -> tuple[str, int]:
    case_id = open_case_as(world, "police", status=status)
    chair = world.actor("police", CHAIR)
    with world.store.session() as session:
        if status == CaseStatus.AER:
            service.set_identity(session, chair, keyring, case_id,
                                 service.Identity("Sam Doe", date(1975, 5, 5), "1 Oak Ave"))
        return case_id, service.read_case(session, chair, case_id).version


def test_route_role_involvement_matrix(client: TestClient, world: World,
                                       platform_settings: Settings) -> None:
    keyring = Keyring.from_settings(platform_settings)
    tokens = {(agency, role): token_for(world, agency, role, platform_settings)
              for agency in ("police", "housing") for role in Role}
    wrong: list[str] = []
    cells = 0
    for n, (route, role, involved) in enumerate(itertools.product(ROUTES, Role, (True, False))):
        case_id, version = _case(world, keyring, route.status)
        agency = "police" if involved else "housing"
        response = client.request(route.method, route.path.format(id=case_id),
                                  json=route.body(version, n),
                                  headers=bearer(tokens[(agency, role)], "matrix test"))
        cells += 1
        want = expected(route, role, involved)
        if response.status_code != want:
            wrong.append(f"{route.name} as {role.value} ({'' if involved else 'not '}involved):"
                         f" {response.status_code}, expected {want}")
        elif want >= 400:
            assert response.json()["error"]["status"] == want
    assert not wrong, "\n".join(wrong)
    assert cells == len(ROUTES) * len(Role) * 2


def test_every_route_needs_a_login_and_refuses_bad_credentials(client: TestClient, world: World,
                                   platform_settings: Settings) -> None:
    keyring = Keyring.from_settings(platform_settings)
    case_id, version = _case(world, keyring, CaseStatus.AER)
    for route in ROUTES:
        for headers in ({}, {"Authorization": "Bearer cswb_000000000000_forged"},
                        {"Authorization": "Basic dXNlcjpwYXNz"}):
            response = client.request(route.method, route.path.format(id=case_id),
                                      json=route.body(version, 0), headers=headers)
            if route.public and not headers:
                assert response.status_code == route.success, (route.name, response.text)
                continue
            assert response.status_code == 401, (route.name, headers, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert response.json()["error"]["code"] == "unauthenticated"


def test_identity_reads_are_audited_with_their_basis(client: TestClient, world: World,
                                                     platform_settings: Settings) -> None:
    keyring = Keyring.from_settings(platform_settings)
    case_id, _ = _case(world, keyring, CaseStatus.AER)
    token = token_for(world, "police", REP, platform_settings)
    refused = client.get(f"/api/v1/cases/{case_id}/identity", headers=bearer(token))
    assert refused.status_code == 400 and "basis" in refused.json()["error"]["message"]
    read = client.get(f"/api/v1/cases/{case_id}/identity",
                      headers=bearer(token, "joint visit tomorrow"))
    assert read.json() == {"name": "Sam Doe", "date_of_birth": "1975-05-05",
                           "address": "1 Oak Ave"}
    listed = client.get("/api/v1/cases", headers=bearer(token)).text
    assert "Sam Doe" not in listed and "Oak" not in listed
    with world.store.sessions() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "identity.read")
                                ).one()
    assert (entry.actor, entry.agency, entry.object_id, entry.basis, entry.source,
            entry.fields) == ("police.agency_representative", "police", case_id,
                              "joint visit tomorrow", "203.0.113.5",
                              "name,date_of_birth,address")


def test_refused_attempts_are_audited(client: TestClient, world: World,
                                      platform_settings: Settings) -> None:
    keyring = Keyring.from_settings(platform_settings)
    case_id, _ = _case(world, keyring, CaseStatus.AER)
    outsider = token_for(world, "housing", REP, platform_settings)
    navigator = token_for(world, "police", NAV, platform_settings)
    assert client.get(f"/api/v1/cases/{case_id}/identity",
                      headers=bearer(outsider, "curious")).status_code == 404
    assert client.get(f"/api/v1/cases/{case_id}/identity",
                      headers=bearer(navigator, "curious")).status_code == 403
    with world.store.sessions() as session:
        refused = session.execute(select(AuditEntry.actor, AuditEntry.action,
                                         AuditEntry.object_id, AuditEntry.outcome,
                                         AuditEntry.basis)
                                  .where(AuditEntry.outcome != "ok")
                                  .order_by(AuditEntry.id)).all()
    action = "GET /api/v1/cases/{case_id}/identity"
    assert [tuple(r) for r in refused] == [
        ("housing.agency_representative", action, case_id, "not_found", "curious"),
        ("police.navigator", action, case_id, "denied", "curious")]
