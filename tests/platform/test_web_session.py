"""The web login form and "My cases": CSRF on every form, HttpOnly strict cookies."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from cswb.domain.cases import Role
from cswb.security.accounts import create_user
from cswb.security.principal import SYSTEM, Actor
from tests.platform.factories import PASSWORD, World, open_case_as


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_login_form_needs_its_csrf_token_and_opens_a_session(client: TestClient,
                                                             world: World) -> None:
    with world.store.session() as session:
        create_user(session, Actor(SYSTEM), "pat.rep", agency_code="police",
                    role=Role.AGENCY_REPRESENTATIVE, password=PASSWORD)
    open_case_as(world, "police")
    assert client.get("/cases", follow_redirects=False).headers["location"] == "/login"
    form = client.get("/login")
    assert form.status_code == 200 and "csrf_token" in form.text
    assert "HttpOnly" in form.headers["set-cookie"] and "SameSite=strict" in \
        form.headers["set-cookie"]
    fields = {"username": "pat.rep", "password": PASSWORD}
    forged = client.post("/login", data={**fields, "csrf_token": "guess"},
                         follow_redirects=False)
    assert forged.status_code == 403
    wrong = client.post("/login", data={**fields, "password": "nope",
                                         "csrf_token": _csrf(client.get("/login").text)})
    assert wrong.status_code == 401 and "Unknown user or password" in wrong.text
    signed_in = client.post("/login", data={**fields, "csrf_token": _csrf(
        client.get("/login").text)}, follow_redirects=False)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/cases"
    cookie = signed_in.headers["set-cookie"]
    assert "cswb_session=cswb_" in cookie and "HttpOnly" in cookie
    page = client.get("/cases")
    assert page.status_code == 200 and "presented" in page.text and "pat.rep" in page.text
    assert "Content-Security-Policy" in page.headers
    assert client.post("/logout", data={"csrf_token": "guess"}).status_code == 403
    assert client.get("/cases", follow_redirects=False).status_code == 200  # still signed in
    client.post("/logout", data={"csrf_token": _csrf(page.text)})
    assert client.get("/cases", follow_redirects=False).status_code == 303
