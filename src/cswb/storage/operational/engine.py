"""Engine, sessions and migrations of the operational store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from cswb.errors import ConflictError, StoreError
from cswb.settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD_REVISION = "0002"


class OperationalStore:
    """An engine and a session factory over one operational database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        try:
            with self.sessions.begin() as session:
                yield session
        except StaleDataError:
            raise ConflictError("the record was changed by someone else since it was read; "
                                "reload it and apply the change again") from None

    def upgrade(self, revision: str = "head") -> None:
        """Create or upgrade the schema with the Alembic migrations."""
        from alembic import command

        with self.engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def current_revision(self) -> str | None:
        """The schema's Alembic revision (None for an empty database)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def require_current(self) -> None:
        """Raise :class:`StoreError` unless the schema is at the latest migration."""
        try:
            revision = self.current_revision()
        except OperationalError as exc:
            raise StoreError(f"operational store {self.safe_url} cannot be reached: "
                             f"{exc.orig.__class__.__name__}") from None
        if revision != HEAD_REVISION:
            raise StoreError(f"operational store {self.safe_url} is at schema revision "
                             f"{revision or '(empty)'}, expected {HEAD_REVISION}: "
                             "run `cswb db upgrade`")

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def table_names(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def dispose(self) -> None:
        self.engine.dispose()


def own_table(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's ``include_name`` filter: only the operational store's own tables, so that a
    database it shares with the linkage zone's schema is never read as drift (nor would a
    generated migration drop the other schema's tables)."""
    if type_ != "table":
        return True
    from cswb.storage.operational.models import Base

    return name in Base.metadata.tables


def alembic_config() -> Any:
    """Alembic's configuration pointing at cswb's migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def open_operational_store(settings: Settings, *, pool_size: int = 10) -> OperationalStore:
    """The store named by ``settings.resolved_operational_url`` (not migrated here)."""
    url_text = settings.resolved_operational_url
    try:
        url = make_url(url_text)
    except ArgumentError:
        raise StoreError("operational_url is not a database URL "
                         "(sqlite:///FILE or postgresql+psycopg://...)") from None
    if url.get_backend_name() == "sqlite":
        return OperationalStore(_sqlite_engine(url_text))
    if url.get_backend_name() == "postgresql":
        # No pre-ping (it costs a round trip per request); connections are recycled instead,
        # and a dropped connection fails one request, which the client may retry.
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                               pool_recycle=1800)
        return OperationalStore(engine)
    raise StoreError(f"operational_url uses {url.get_backend_name()}; "
                     "cswb supports sqlite and postgresql")


def _sqlite_engine(url_text: str) -> Engine:
    database = make_url(url_text).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url_text, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Python's sqlite3 opens transactions lazily; BEGIN IMMEDIATE below takes the write
        # lock up front so two writers queue instead of failing on lock upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
