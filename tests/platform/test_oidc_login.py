"""OpenID Connect login against a real local provider (Authlib server components)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import RSAKey

from cswb.api import create_app
from cswb.domain.cases import Role
from cswb.security.accounts import create_user
from cswb.security.principal import SYSTEM, Actor
from cswb.settings import Settings
from tests.platform.factories import World
from tests.platform.oidc_provider import CLIENT_ID, CLIENT_SECRET, RunningProvider, start_provider

REDIRECT = "http://testserver/auth/oidc/callback"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningProvider]:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain HTTP on 127.0.0.1 only
    running = start_provider(REDIRECT)
    yield running
    running.server.shutdown()


@pytest.fixture
def oidc_client(platform_settings: Settings, world: World, provider: RunningProvider,
                tmp_path: Path) -> Iterator[TestClient]:
    settings = platform_settings.model_copy(update={
        "store_url": f"duckdb:///{(tmp_path / 'store').as_posix()}",
        "oidc_issuer": provider.issuer, "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": __import__("pydantic").SecretStr(CLIENT_SECRET),
        "oidc_redirect_url": REDIRECT, "oidc_agency": "health"})
    with world.store.session() as session:
        create_user(session, Actor(SYSTEM), "sam.hospital", agency_code="health",
                    role=Role.AGENCY_REPRESENTATIVE)
    with TestClient(create_app(settings)) as client:
        yield client


def _through_provider(client: TestClient) -> httpx.Response:
    """Start at cswb, let the provider approve, come back to cswb's callback."""
    start = client.get("/auth/oidc/login", follow_redirects=False)
    assert start.status_code == 303
    authorize = start.headers["location"]
    query = parse_qs(urlparse(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    approved = httpx.get(authorize, follow_redirects=False)
    assert approved.status_code == 302, approved.text
    back = urlparse(approved.headers["location"])
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)


def test_login_through_the_identity_provider(oidc_client: TestClient) -> None:
    done = _through_provider(oidc_client)
    assert done.status_code == 303 and done.headers["location"] == "/cases"
    me = oidc_client.get("/api/v1/auth/me")
    assert me.json() == {"username": "sam.hospital", "agency": "health",
                         "role": "agency_representative"}
    again = _through_provider(oidc_client)  # linked by issuer and subject now
    assert again.status_code == 303


def test_unknown_identity_is_refused(oidc_client: TestClient,
                                     provider: RunningProvider) -> None:
    provider.provider.approving_user = "stranger"
    refused = _through_provider(oidc_client)
    assert refused.status_code == 401
    assert "no active cswb account" in refused.json()["error"]["message"]


def test_id_token_signed_by_another_key_is_refused(oidc_client: TestClient,
                                                   provider: RunningProvider) -> None:
    provider.provider.published_key = RSAKey.generate_key(2048, parameters={"kid": "test-1"})
    refused = _through_provider(oidc_client)
    assert refused.status_code == 401
    assert "ID token is not valid" in refused.json()["error"]["message"]


def test_state_must_match_the_login_cookie(oidc_client: TestClient) -> None:
    start = oidc_client.get("/auth/oidc/login", follow_redirects=False)
    approved = httpx.get(start.headers["location"], follow_redirects=False)
    back = urlparse(approved.headers["location"])
    code = parse_qs(back.query)["code"][0]
    forged = oidc_client.get(f"{back.path}?code={code}&state=forged", follow_redirects=False)
    assert forged.status_code == 401 and "state" in forged.json()["error"]["message"]
    oidc_client.cookies.clear()
    no_cookie = oidc_client.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert no_cookie.status_code == 401
