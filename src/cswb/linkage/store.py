"""The linkage store: identifying values of ingested calls, apart from the analytic store.

One table, ``linkage_values``: per identifying value of a call, its source, the call's source
record id (which the analytic store shares: the pseudonymous join), the batch, the column, the
kind, a keyed hash of the normalised value and the value sealed with the field encryption.
Never the call's content (type, time, place): the linkage process sees identifiers, analysts
see content (``docs/linkage.md``).

A batch writes its rows ``pending`` before the analytic store commits, and marks them
``committed`` after. The analytic store's manifest decides: :meth:`LinkageStore.recover`
(run under the analytic store's writer lock) commits the pending rows of batches the analytic
store holds and deletes the others, so no identifier outlives a failed batch and no committed
call loses its identifiers (``docs/adr/0010-linkage-store.md``). Readers see committed rows
only.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cswb.errors import LinkageError
from cswb.logging import get_logger
from cswb.security.crypto import DEFAULT_SEARCH_KEY_ID
from cswb.settings import Settings

log = get_logger("linkage")

PENDING, COMMITTED = "pending", "committed"
MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "linkage_alembic_version"
"""Alembic's version table for this schema: apart from the operational store's, so both
schemas can live in one PostgreSQL database."""
HEAD_REVISION = "l002"
_PG_MIGRATION_LOCK = 0x6C696E6B  # 'link': the advisory lock openers migrate under
WRITTEN = ("source", "source_record_id", "column_name", "kind", "value_hash", "value_sealed",
           "key_id", "batch_id", "hash_key_id")
"""The columns a writer gives, in this order (state and time are added)."""

metadata = MetaData()

linkage_values = Table(
    "linkage_values", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(63), nullable=False),
    Column("source_record_id", String(255), nullable=False),
    Column("column_name", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value_hash", String(64), nullable=False),
    Column("value_sealed", Text, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("batch_id", String(40), nullable=False),
    Column("hash_key_id", String(40), nullable=False, server_default=DEFAULT_SEARCH_KEY_ID),
    Column("state", String(10), nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("source", "source_record_id", "column_name", "value_hash",
                     name="uq_linkage_value"),
    Index("ix_linkage_hash", "value_hash"),
    Index("ix_linkage_batch", "batch_id", "state"),
    Index("ix_linkage_linked_at", "linked_at"),
)

@dataclass(frozen=True)
class LinkedRecord:
    """A record holding a value: where to find its call, never the value itself."""

    source: str
    source_record_id: str
    column_name: str
    batch_id: str

    @property
    def call_id(self) -> str:
        """The analytic store's call id of the record."""
        return f"{self.source}:{self.source_record_id}"


@dataclass(frozen=True)
class ColumnCount:
    """Committed identifying values of one column of one source."""

    source: str
    column_name: str
    kind: str
    values: int
    records: int
    distinct_hashes: int


class LinkageStore:
    """The linkage zone's database (SQLite by default, PostgreSQL for deployments)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        try:
            self._migrate()
        except SQLAlchemyError as exc:
            raise LinkageError(f"the linkage store at {self.safe_url} cannot be opened: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()

    def revision(self) -> str | None:
        """The schema's migration revision (None before the first)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(
                connection, opts={"version_table": VERSION_TABLE}).get_current_revision()

    def _migrate(self) -> None:
        """Bring the schema to :data:`HEAD_REVISION` with the Alembic migrations in
        ``cswb/linkage/migrations``, one opener at a time. A store made before migrations
        (by ``create_all``) is first stamped with the revision its columns show."""
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        with self._migration_lock(), self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
            current = MigrationContext.configure(
                connection, opts={"version_table": VERSION_TABLE}).get_current_revision()
            if current == HEAD_REVISION:
                return
            config = _alembic_config(connection)
            if current is None and inspect(connection).has_table("linkage_values"):
                columns = {c["name"] for c in inspect(connection).get_columns("linkage_values")}
                command.stamp(config, "l002" if "hash_key_id" in columns else "l001")
            command.upgrade(config, "head")
            log.info("linkage store %s migrated from %s to %s", self.safe_url,
                     current or "(new)", HEAD_REVISION)

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """An exclusive lock beside a SQLite file while its schema is checked (PostgreSQL
        takes an advisory lock in the migrating transaction instead)."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate-lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- writing (the ingest) ------------------------------------------------------------------

    def write_pending(self, chunks: Iterable[list[tuple[str, ...]]]) -> int:
        """Insert a batch's rows (:data:`WRITTEN` order) as pending, a transaction per chunk
        (short write locks; pending rows are invisible to readers anyway); values a record
        already has are skipped. Returns the rows offered."""
        dialect = self.engine.dialect
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        names = [*WRITTEN, "state", "linked_at"]
        sql = (f"INSERT INTO linkage_values ({', '.join(names)}) VALUES "
               f"({', '.join([mark] * len(names))}) ON CONFLICT DO NOTHING")
        stamp = linkage_values.c.linked_at.type.bind_processor(dialect)
        now = datetime.now(UTC)
        linked_at = stamp(now) if stamp else now
        offered = 0
        for chunk in chunks:
            if chunk:
                with self._begin() as con:
                    con.exec_driver_sql(sql, [(*row, PENDING, linked_at) for row in chunk])
                offered += len(chunk)
        return offered

    def commit_batch(self, batch_id: str) -> int:
        """Make a batch's pending rows visible (after the analytic store committed it)."""
        with self._begin() as con:
            done = con.execute(update(linkage_values)
                               .where(linkage_values.c.batch_id == batch_id,
                                      linkage_values.c.state == PENDING)
                               .values(state=COMMITTED)).rowcount
        return int(done)

    def discard_batch(self, batch_id: str) -> int:
        """Delete a batch's pending rows (its analytic batch failed)."""
        with self._begin() as con:
            gone = con.execute(delete(linkage_values)
                               .where(linkage_values.c.batch_id == batch_id,
                                      linkage_values.c.state == PENDING)).rowcount
        return int(gone)

    def pending_batches(self) -> list[str]:
        """Batches with rows still pending (an ingest running, or one that died)."""
        with self._begin() as con:
            return [b for (b,) in con.execute(select(linkage_values.c.batch_id).distinct()
                                              .where(linkage_values.c.state == PENDING))]

    def recover(self, committed_batches: Iterable[str]) -> tuple[int, int]:
        """Settle batches left pending by a writer that died; (committed, discarded) rows.

        The caller holds the analytic store's writer lock, so no batch is in flight, and
        passes the batch ids that store holds.
        """
        known = set(committed_batches)
        kept = dropped = 0
        for batch_id in self.pending_batches():
            if batch_id in known:
                kept += self.commit_batch(batch_id)
            else:
                dropped += self.discard_batch(batch_id)
        if kept or dropped:
            log.warning("linkage recovery: %d pending rows committed, %d of failed batches "
                        "deleted", kept, dropped)
        return kept, dropped

    # -- reading (the linkage process) ---------------------------------------------------------

    def status(self) -> list[ColumnCount]:
        """Committed values per source and column: counts only, never values."""
        t = linkage_values.c
        query = (select(t.source, t.column_name, t.kind, func.count(),
                        func.count(t.source_record_id.distinct()),
                        func.count(t.value_hash.distinct()))
                 .where(t.state == COMMITTED)
                 .group_by(t.source, t.column_name, t.kind).order_by(t.source, t.column_name))
        with self._begin() as con:
            return [ColumnCount(s, c, k, int(n), int(r), int(h))
                    for s, c, k, n, r, h in con.execute(query)]

    def pending_rows(self) -> int:
        with self._begin() as con:
            return int(con.execute(select(func.count()).select_from(linkage_values)
                                   .where(linkage_values.c.state == PENDING)).scalar_one())

    def records_with(self, value_hash: str | Sequence[str]) -> list[LinkedRecord]:
        """The records (any source, any column) holding the value with this keyed hash, or
        with any of these hashes (the value's hash under every search key, during a rehash:
        :func:`cswb.linkage.values.value_hashes`)."""
        t = linkage_values.c
        wanted = [value_hash] if isinstance(value_hash, str) else list(value_hash)
        query = (select(t.source, t.source_record_id, t.column_name, t.batch_id).distinct()
                 .where(t.value_hash.in_(wanted), t.state == COMMITTED)
                 .order_by(t.source, t.source_record_id, t.column_name))
        with self._begin() as con:
            return [LinkedRecord(*row) for row in con.execute(query)]

    def shared_values(self, min_records: int = 2, kind: str | None = None
                      ) -> dict[str, list[LinkedRecord]]:
        """Keyed hashes held by at least ``min_records`` records, with those records."""
        t = linkage_values.c
        shared = (select(t.value_hash).where(t.state == COMMITTED)
                  .group_by(t.value_hash)
                  .having(func.count(func.distinct(t.source + ":" + t.source_record_id))
                          >= min_records))
        if kind is not None:
            shared = shared.where(t.kind == kind)
        query = (select(t.value_hash, t.source, t.source_record_id, t.column_name, t.batch_id)
                 .where(t.state == COMMITTED, t.value_hash.in_(shared))
                 .order_by(t.value_hash, t.source, t.source_record_id))
        out: dict[str, list[LinkedRecord]] = {}
        with self._begin() as con:
            for value_hash, *rest in con.execute(query):
                out.setdefault(value_hash, []).append(LinkedRecord(*rest))
        return out

    def sealed_values(self, source: str, source_record_id: str
                      ) -> list[tuple[str, str, str]]:
        """(column, kind, sealed value) of one record, for the linkage process to open."""
        t = linkage_values.c
        query = (select(t.column_name, t.kind, t.value_sealed)
                 .where(t.source == source, t.source_record_id == source_record_id,
                        t.state == COMMITTED).order_by(t.column_name, t.id))
        with self._begin() as con:
            return [(c, k, v) for c, k, v in con.execute(query)]

    # -- retention -----------------------------------------------------------------------------

    def batches_linked_before(self, cutoff: datetime) -> list[tuple[str, int]]:
        """(batch id, rows) of the batches with values linked at or before ``cutoff``."""
        t = linkage_values.c
        query = (select(t.batch_id, func.count()).where(t.linked_at <= cutoff)
                 .group_by(t.batch_id).order_by(t.batch_id))
        with self._begin() as con:
            return [(b, int(n)) for b, n in con.execute(query)]

    def purge_batch(self, batch_id: str, cutoff: datetime) -> int:
        """Delete a batch's rows linked at or before ``cutoff``: sealed value, keyed hash and
        all (SQLite's secure_delete overwrites them)."""
        with self._begin() as con:
            gone = con.execute(delete(linkage_values)
                               .where(linkage_values.c.batch_id == batch_id,
                                      linkage_values.c.linked_at <= cutoff)).rowcount
        return int(gone)

    def _begin(self) -> Any:
        return self.engine.begin()


def own_table(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's ``include_name`` filter: only the linkage schema's tables (a database may
    hold the operational store's too)."""
    return type_ != "table" or name in metadata.tables


def _alembic_config(connection: Any) -> Any:
    """Alembic's configuration for the linkage migrations, on ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def open_linkage_store(settings: Settings) -> LinkageStore:
    """The linkage store named by the settings (its folder created, private to its owner)."""
    url_text = settings.resolved_linkage_url
    try:
        url = make_url(url_text)
    except ArgumentError:
        raise LinkageError(f"linkage_url {url_text!r} is not a database URL") from None
    if url.get_backend_name() == "sqlite":
        return LinkageStore(_sqlite_engine(url_text, url.database))
    try:
        engine = create_engine(url_text, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise LinkageError(f"linkage_url {url.render_as_string(hide_password=True)} cannot be "
                           f"used: {exc}") from None
    return LinkageStore(engine)


def linkage_store_exists(settings: Settings) -> bool:
    """False when the default SQLite linkage file was never created (nothing to act on);
    a server URL is taken to exist."""
    try:
        url = make_url(settings.resolved_linkage_url)
    except ArgumentError:
        raise LinkageError(f"linkage_url {settings.resolved_linkage_url!r} is not a database "
                           "URL") from None
    if url.get_backend_name() == "sqlite":
        return bool(url.database) and url.database != ":memory:" and \
            Path(url.database or "").exists()
    return True


def _sqlite_engine(url_text: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        folder = Path(database).parent
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    engine = create_engine(url_text, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine
