"""Two app instances over one operational store, as two API worker processes would be: the
login rate limit is shared, and a revocation in one is honoured by the other promptly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cswb.domain.cases import Role
from cswb.security.accounts import create_user, disable_user
from cswb.security.principal import SYSTEM, Actor
from cswb.settings import Settings
from cswb.storage.operational.models import LoginAttempt
from tests.platform.factories import PASSWORD, World, bearer

ADMIN = Actor(SYSTEM, "test")
RATE = 5
CHECK_SECONDS = 0.2


@pytest.fixture
def workers(platform_settings: Settings, world: World,
            tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps sharing the store, with a long token cache and a short revocation check."""
    from cswb.api import create_app

    settings = platform_settings.model_copy(update={
        "store_url": f"duckdb:///{(tmp_path / 'store').as_posix()}",
        "duckdb_memory_limit": "1GB", "login_rate_per_minute": RATE,
        "token_cache_seconds": 300.0, "token_revocation_check_seconds": CHECK_SECONDS})
    with ExitStack() as stack:
        first, second = (stack.enter_context(TestClient(create_app(settings),
                                                         client=("203.0.113.5", 50000)))
                         for _ in range(2))
        yield first, second


def _login(client: TestClient, username: str = "pat.chair",
           password: str = PASSWORD) -> object:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def _me(client: TestClient, token: str) -> int:
    return client.get("/api/v1/auth/me", headers=bearer(token)).status_code


def test_login_rate_limit_is_shared_by_the_workers(workers: tuple[TestClient, TestClient],
                                                   world: World) -> None:
    first, second = workers
    statuses = [_login(client, "nobody", "wrong password!!").status_code
                for client in (first, second) * (RATE + 1)]
    assert statuses.count(401) == RATE and statuses.count(429) == RATE + 2
    assert statuses[-2:] == [429, 429]
    with world.store.sessions() as session:
        stored = {a.client for a in session.query(LoginAttempt).all()}
    assert len(stored) == 1 and "203.0.113.5" not in next(iter(stored))


def test_concurrent_logins_on_both_workers_never_pass_the_limit(
        workers: tuple[TestClient, TestClient], world: World) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def attempts(client: TestClient) -> None:
        for _ in range(RATE):
            status = _login(client, "nobody", "wrong password!!").status_code
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=attempts, args=(client,)) for client in workers * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [401] * RATE + [429] * (3 * RATE)


def _user_with_token(world: World, client: TestClient) -> str:
    with world.store.session() as session:
        create_user(session, ADMIN, "pat.chair", agency_code="police", role=Role.TABLE_CHAIR,
                    password=PASSWORD)
    response = _login(client)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def _refused_within(client: TestClient, token: str, limit: float) -> float:
    """Seconds until ``client`` refuses ``token`` (fails past ``limit``)."""
    start = time.monotonic()
    while _me(client, token) != 401:
        assert time.monotonic() - start < limit, "the revoked token is still accepted"
        time.sleep(0.02)
    return time.monotonic() - start


def test_logout_in_one_worker_is_honoured_by_the_other(workers: tuple[TestClient, TestClient],
                                                       world: World) -> None:
    first, second = workers
    token = _user_with_token(world, first)
    assert _me(second, token) == 200  # now cached in the second worker for 300 s
    assert first.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert _me(first, token) == 401
    _refused_within(second, token, CHECK_SECONDS + 2.0)


def test_disabling_a_user_is_honoured_by_every_worker(workers: tuple[TestClient, TestClient],
                                                      world: World) -> None:
    first, second = workers
    token = _user_with_token(world, first)
    assert _me(first, token) == 200 and _me(second, token) == 200  # cached in both
    with world.store.session() as session:
        disable_user(session, ADMIN, "pat.chair")
    for client in workers:
        _refused_within(client, token, CHECK_SECONDS + 2.0)


def test_an_unrelated_token_keeps_working(workers: tuple[TestClient, TestClient],
                                         world: World) -> None:
    """Dropping the cache costs a look-up, never an answer: other tokens keep working."""
    first, second = workers
    token = _user_with_token(world, first)
    other = _login(first).json()["token"]
    assert _me(second, token) == 200 and _me(second, other) == 200
    assert first.post("/api/v1/auth/logout", headers=bearer(other)).status_code == 204
    _refused_within(second, other, CHECK_SECONDS + 2.0)
    assert _me(second, token) == 200
