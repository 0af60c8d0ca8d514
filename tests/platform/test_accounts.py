"""Logins, lock-out, rate limits, tokens, disabling, request limits, users CLI."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from cswb.cli.main import app
from cswb.domain.cases import Role
from cswb.security.accounts import create_user, disable_user
from cswb.security.principal import SYSTEM, Actor
from cswb.settings import Settings
from cswb.storage.operational.models import AuditEntry, User, utcnow
from tests.platform.factories import PASSWORD, World, bearer, cli_env

ADMIN = Actor(SYSTEM, "test")


def _local_user(world: World, username: str = "pat.chair") -> None:
    with world.store.session() as session:
        create_user(session, ADMIN, username, agency_code="police", role=Role.TABLE_CHAIR,
                    password=PASSWORD)


def _login(client: TestClient, password: str = PASSWORD, username: str = "pat.chair") -> object:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_login_issues_a_token_that_works_until_logout(client: TestClient, world: World) -> None:
    _local_user(world)
    response = _login(client)
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert token.startswith("cswb_") and response.json()["expires_in"] == 8 * 3600
    me = client.get("/api/v1/auth/me", headers=bearer(token)).json()
    assert me == {"username": "pat.chair", "agency": "police", "role": "table_chair"}
    with world.store.sessions() as session:
        stored = " ".join(str(v) for v in session.execute(
            select(User.password_hash)).scalars())
    assert PASSWORD not in stored and "$argon2id$" in stored
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401


def test_wrong_passwords_lock_the_account(client: TestClient, world: World) -> None:
    _local_user(world)
    for _ in range(5):
        refused = _login(client, "wrong password!!")
        assert refused.status_code == 401
        assert refused.json()["error"]["message"] == \
            "login refused: unknown user or password"
    locked = _login(client)
    assert locked.status_code == 401 and "locked" in locked.json()["error"]["message"]
    with world.store.session() as session:
        session.execute(update(User).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert _login(client).status_code == 200
    with world.store.sessions() as session:
        outcomes = session.scalars(select(AuditEntry.outcome)
                                   .where(AuditEntry.action == "auth.login")).all()
    assert outcomes.count("denied") == 6 and outcomes.count("ok") == 1


def test_unknown_user_gets_the_same_answer(client: TestClient, world: World) -> None:
    refused = _login(client, username="nobody")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "login refused: unknown user or password"


def test_login_is_rate_limited_per_address(client: TestClient, world: World,
                                           platform_settings: Settings) -> None:
    statuses = [_login(client, "wrong", username="nobody").status_code
                for _ in range(platform_settings.login_rate_per_minute + 3)]
    assert statuses.count(401) == platform_settings.login_rate_per_minute
    assert statuses[-1] == 429


def test_disabling_revokes_tokens(client: TestClient, world: World,
                                  platform_settings: Settings) -> None:
    _local_user(world)
    token = _login(client).json()["token"]
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    with world.store.session() as session:
        disable_user(session, ADMIN, "pat.chair")
    client.app.state.platform.tokens.forget(token)  # the cache would trust it a little longer
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    assert _login(client).status_code == 401


@contextmanager
def _client_caching_tokens_for(settings: Settings, tmp_path: Path,
                               seconds: float) -> Iterator[TestClient]:
    """The real app, trusting a verified token for ``seconds`` without a database look-up."""
    from cswb.api import create_app

    settings = settings.model_copy(update={
        "token_cache_seconds": seconds, "store_url": f"duckdb:///{(tmp_path / 'store').as_posix()}",
        "duckdb_memory_limit": "1GB"})
    with TestClient(create_app(settings), client=("203.0.113.5", 50000)) as test_client:
        yield test_client


def test_a_disabled_account_is_refused_once_the_token_cache_lapses(
        world: World, platform_settings: Settings, tmp_path: Path) -> None:
    # Disabling from elsewhere (the CLI is another process): the server's cached verification
    # is trusted for token_cache_seconds at most, then the database says no.
    _local_user(world)
    with _client_caching_tokens_for(platform_settings, tmp_path, 0.5) as client:
        token = _login(client).json()["token"]
        assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
        with world.store.session() as session:
            disable_user(session, ADMIN, "pat.chair")
        time.sleep(0.6)
        assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
        assert client.get("/api/v1/cases", headers=bearer(token)).status_code == 401


def test_a_role_change_takes_effect_once_the_token_cache_lapses(
        world: World, platform_settings: Settings, tmp_path: Path) -> None:
    _local_user(world)
    with _client_caching_tokens_for(platform_settings, tmp_path, 0.5) as client:
        token = _login(client).json()["token"]
        assert client.get("/api/v1/users", headers=bearer(token)).status_code == 403
        with world.store.session() as session:
            session.execute(update(User).where(User.username == "pat.chair")
                            .values(role=Role.ADMINISTRATOR.value))
        time.sleep(0.6)
        assert client.get("/api/v1/auth/me", headers=bearer(token)).json()["role"] == \
            "administrator"
        assert client.get("/api/v1/users", headers=bearer(token)).status_code == 200
        assert client.get("/api/v1/cases", headers=bearer(token)).status_code == 403


def test_without_a_token_cache_every_request_checks_the_account(
        world: World, platform_settings: Settings, tmp_path: Path) -> None:
    _local_user(world)
    with _client_caching_tokens_for(platform_settings, tmp_path, 0) as client:
        token = _login(client).json()["token"]
        assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
        with world.store.session() as session:
            disable_user(session, ADMIN, "pat.chair")
        assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401


def test_tampered_tokens_are_refused(client: TestClient, world: World) -> None:
    _local_user(world)
    token = _login(client).json()["token"]
    for forged in (token[:-1] + ("A" if token[-1] != "A" else "B"), token + "x",
                   token.replace("cswb_", "xxxx_"), "cswb_short_x"):
        assert client.get("/api/v1/auth/me", headers=bearer(forged)).status_code == 401


def test_cookie_sessions_need_the_csrf_header(client: TestClient, world: World) -> None:
    from cswb.api.security import CSRF_HEADER, SESSION_COOKIE, csrf_token

    _local_user(world)
    token = _login(client).json()["token"]
    client.cookies.set(SESSION_COOKIE, token)
    assert client.get("/api/v1/auth/me").status_code == 200
    body = {"subject_type": "person", "summary": "x"}
    refused = client.post("/api/v1/cases", json=body)
    assert refused.status_code == 403 and CSRF_HEADER in refused.json()["error"]["message"]
    accepted = client.post("/api/v1/cases", json=body, headers={
        CSRF_HEADER: csrf_token(client.app.state.platform, token)})
    assert accepted.status_code == 201


def test_large_bodies_are_refused(client: TestClient, world: World,
                                  platform_settings: Settings) -> None:
    big = "x" * (platform_settings.max_request_bytes + 1)
    response = client.post("/api/v1/auth/login", content=big,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert response.headers["X-Content-Type-Options"] == "nosniff"

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(100):
            yield b"x" * 1024

    streamed = client.post("/api/v1/auth/login", content=chunks(),
                           headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_errors_never_echo_what_was_sent(client: TestClient, world: World) -> None:
    _local_user(world)
    token = _login(client).json()["token"]
    response = client.post("/api/v1/cases", headers=bearer(token),
                           json={"subject_type": "Jordan Example 555-123-4567"})
    assert response.status_code == 422
    assert "Jordan" not in response.text and "555" not in response.text


def test_users_cli_create_list_disable(world: World, platform_settings: Settings) -> None:
    runner = CliRunner()
    env = cli_env(platform_settings)
    created = runner.invoke(app, ["users", "create", "lee.nav", "--agency", "housing",
                                  "--role", "navigator"], env=env,
                            input=f"{PASSWORD}\n{PASSWORD}\n")
    assert created.exit_code == 0, created.output
    listed = runner.invoke(app, ["users", "list"], env=env)
    assert "lee.nav" in listed.output and "navigator" in listed.output
    assert runner.invoke(app, ["users", "disable", "lee.nav"], env=env).exit_code == 0
    assert "disabled" in runner.invoke(app, ["users", "list"], env=env).output
    short = runner.invoke(app, ["users", "create", "kim", "--agency", "housing", "--role",
                                "analyst"], env=env, input="short\nshort\n")
    assert "at least 12 characters" in str(short.exception)
    with world.store.sessions() as session:
        actors = session.scalars(select(AuditEntry.actor)
                                 .where(AuditEntry.action.like("user.%"))).all()
    assert any(a.startswith("cli:") for a in actors)
