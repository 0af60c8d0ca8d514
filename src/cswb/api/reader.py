"""Read access to the analytic store for concurrent web requests.

A DuckDB connection must not be used by two threads at once, and opening one per request costs
more than the query itself. :class:`StoreReader` keeps one in-memory DuckDB database whose views
match the store's committed manifest, rebuilds it when the manifest changes (a new batch was
committed), and hands each request its own cursor over it.

With roll-ups on (setting ``api_rollups``), each such database also gets a
:class:`~cswb.analytics.rollup.Rollups`: tables of call counts built in that database on first
use, so they live and die with the store version they were built from.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from cswb.analytics.rollup import ROLLUP_FORMAT, Rollups
from cswb.storage.analytic import AnalyticStore, Manifest
from cswb.storage.sql import run


class StoreReader:
    """Per-request DuckDB cursors over the store as of its latest committed manifest."""

    def __init__(self, store: AnalyticStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._key: str | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._rollups: Rollups | None = None

    def manifest(self) -> Manifest:
        """The committed manifest; raises :class:`cswb.errors.StoreError` when it is unreadable."""
        return self.store.read_manifest()

    @contextlib.contextmanager
    def cursor(self, manifest: Manifest | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor (its own connection to the shared database) for one request."""
        with self.cursor_and_rollups(manifest) as (cur, _):
            yield cur

    @contextlib.contextmanager
    def cursor_and_rollups(self, manifest: Manifest | None = None
                           ) -> Iterator[tuple[duckdb.DuckDBPyConnection, Rollups | None]]:
        """A cursor for one request and the roll-ups of the same database (None when the
        setting ``api_rollups`` is off)."""
        base, rollups = self._base_for(manifest or self.manifest())
        cur = base.cursor()
        try:
            yield cur, rollups
        finally:
            cur.close()

    def warm(self, area_level: str) -> None:
        """Build the roll-ups of ``area_level`` for the committed store version now."""
        with self.cursor_and_rollups() as (_, rollups):
            if rollups is not None:
                for flags in (True, False):
                    rollups.relation(area_level, flags, monthly=True)  # and the daily one

    def close(self) -> None:
        """Release the shared database (open cursors keep it alive until they close)."""
        with self._lock:
            self._con, self._key, self._rollups = None, None, None

    def _base_for(self, manifest: Manifest
                  ) -> tuple[duckdb.DuckDBPyConnection, Rollups | None]:
        key = manifest.to_json()
        with self._lock:
            if self._con is None or key != self._key:
                con = self.store.engine()
                self.store.create_views(con, manifest)
                # The previous database is not closed here: cursors of requests still running
                # hold it (and its roll-ups), and it goes away with the last of them.
                self._con, self._key = con, key
                self._rollups = (Rollups(_executor(con), manifest.version,
                                         cache=self._cache_dir(key))
                                 if self.store.settings.api_rollups else None)
            return self._con, self._rollups

    def _cache_dir(self, manifest_json: str) -> Path | None:
        """``<data_dir>/rollups/<store>/<manifest>``: a folder per store version (digests of
        the store's path, and of the roll-up format and the manifest); the store's other
        folders go."""
        settings = self.store.settings
        if not settings.api_rollup_cache:
            return None
        store_key = hashlib.sha256(str(self.store.root.resolve()).encode()).hexdigest()[:16]
        parent = settings.data_dir / "rollups" / store_key
        version_key = f"{ROLLUP_FORMAT}\n{manifest_json}"
        folder = parent / hashlib.sha256(version_key.encode()).hexdigest()[:16]
        if parent.is_dir():
            for old in parent.iterdir():
                if old != folder:
                    shutil.rmtree(old, ignore_errors=True)
        return folder


def _executor(con: duckdb.DuckDBPyConnection) -> Callable[[str], None]:
    """Run one statement in ``con``'s database on a cursor of its own (any thread)."""
    def execute(sql: str) -> None:
        cur = con.cursor()
        try:
            run(cur, sql)
        finally:
            cur.close()
    return execute


def prepare_rollups(store: AnalyticStore) -> bool:
    """Build and keep (under ``data_dir``) the warm area level's roll-ups of the store's
    current version, so a server started or running later loads them instead of building them
    on its first requests. Called by the commands that commit (ingest, classify apply, demo).
    Returns whether anything was prepared (roll-ups, their cache and a warm level all on)."""
    settings = store.settings
    level = settings.api_rollup_warm_level
    if not (settings.api_rollups and settings.api_rollup_cache and level):
        return False
    reader = StoreReader(store)
    try:
        reader.warm(level)
    finally:
        reader.close()
    return True
