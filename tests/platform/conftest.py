"""Fixtures of the operational platform: every test here runs on SQLite and on PostgreSQL.

PostgreSQL is expected on 127.0.0.1:5432 (trust auth; ``CSWB_TEST_POSTGRES_URL`` overrides the
admin URL). One database per test session is created, migrated once, emptied before each test,
and dropped at the end. When PostgreSQL does not answer, its half of the suite is skipped with
the reason; CI starts it (``.ci/run``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from cswb.settings import Settings, load_settings
from cswb.storage.operational import OperationalStore, open_operational_store
from cswb.storage.operational.models import Base
from tests.platform.factories import World, build_world, fresh_keys

PG_ADMIN_URL = os.environ.get("CSWB_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (dropped afterwards)."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"cswb_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL is not answering at {make_url(PG_ADMIN_URL).host}:5432 "
                    f"({exc.orig.__class__.__name__}); .ci/run starts it")
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    store = open_operational_store(load_settings(operational_url=url))
    store.upgrade()
    store.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def platform_settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Test settings with a real keyring, on the parametrised backend.

    On PostgreSQL the linkage zone shares the operational store's database (each schema keeps
    its own migration version table); on SQLite it is its default file under data_dir.
    """
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
        linkage = {"linkage_url": url}
    else:
        url = f"sqlite:///{(tmp_path / 'operational.db').as_posix()}"
        linkage = {}
    return load_settings(environment="test", data_dir=tmp_path / "var", operational_url=url,
                         **linkage, **fresh_keys())


@pytest.fixture
def ops(platform_settings: Settings, backend: str) -> Iterator[OperationalStore]:
    """The operational store, migrated and empty."""
    store = open_operational_store(platform_settings)
    if backend == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with store.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    else:
        store.upgrade()
    yield store
    store.dispose()


@pytest.fixture
def world(ops: OperationalStore) -> World:
    """Agencies and one user of every role in each of them."""
    return build_world(ops)


@pytest.fixture
def client(platform_settings: Settings, world: World, tmp_path: Path) -> Iterator[TestClient]:
    """The real app (API and pages) over this test's operational store, started."""
    from cswb.api import create_app

    settings = platform_settings.model_copy(
        update={"store_url": f"duckdb:///{(tmp_path / 'store').as_posix()}",
                "duckdb_memory_limit": "1GB"})
    with TestClient(create_app(settings), client=("203.0.113.5", 50000)) as test_client:
        yield test_client
