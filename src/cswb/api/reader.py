"""Read access to the analytic store for concurrent web requests.

A DuckDB connection must not be used by two threads at once, and opening one per request costs
more than the query itself. :class:`StoreReader` keeps one in-memory DuckDB database whose views
match the store's committed manifest, rebuilds it when the manifest changes (a new batch was
committed), and hands each request its own cursor over it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import duckdb

from cswb.storage.analytic import AnalyticStore, Manifest


class StoreReader:
    """Per-request DuckDB cursors over the store as of its latest committed manifest."""

    def __init__(self, store: AnalyticStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._key: str | None = None
        self._con: duckdb.DuckDBPyConnection | None = None

    def manifest(self) -> Manifest:
        """The committed manifest; raises :class:`cswb.errors.StoreError` when it is unreadable."""
        return self.store.read_manifest()

    @contextlib.contextmanager
    def cursor(self, manifest: Manifest | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor (its own connection to the shared database) for one request."""
        base = self._base_for(manifest or self.manifest())
        cur = base.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def close(self) -> None:
        """Release the shared database (open cursors keep it alive until they close)."""
        with self._lock:
            self._con, self._key = None, None

    def _base_for(self, manifest: Manifest) -> duckdb.DuckDBPyConnection:
        key = manifest.to_json()
        with self._lock:
            if self._con is None or key != self._key:
                con = self.store.engine()
                self.store.create_views(con, manifest)
                # The previous database is not closed here: cursors of requests still running
                # hold it, and it goes away with the last of them.
                self._con, self._key = con, key
            return self._con
