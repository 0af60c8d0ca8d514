"""The analytic store: Parquet files, a manifest, and DuckDB as the embedded engine.

Layout of a store folder::

    _manifest.json        which files make up each table (the only thing readers trust)
    _lock                 held (flock) by the one writer at a time
    _staging/<txid>/      files being written by a transaction; invisible until commit
    <table>/<name>.parquet

A write is a :class:`Transaction`: new files are written under ``_staging``, moved into their
table folders (still unreferenced, so still invisible), and the transaction commits by replacing
``_manifest.json`` atomically (write, fsync, rename). A process killed at any moment leaves
either the old manifest or the new one; files no manifest references are removed by the next
writer. See ``docs/adr/0002-analytic-store.md``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from cswb.domain.calls import calls_view_sql
from cswb.errors import StoreError
from cswb.files import atomic_write, fsync_dir, fsync_file
from cswb.logging import get_logger
from cswb.settings import Settings
from cswb.storage.sql import lit, run
from cswb.storage.tables import TABLES, empty_select

log = get_logger("storage")

MANIFEST = "_manifest.json"
FORMAT_VERSION = 1


@dataclass
class Manifest:
    """The committed state of the store: for each table, its files and their metadata."""

    version: int = 0
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    retired: list[dict[str, Any]] = field(default_factory=list)

    def files(self, table: str) -> list[dict[str, Any]]:
        return list(self.tables.get(table, []))

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT_VERSION, "version": self.version,
                           "tables": self.tables, "retired": self.retired}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if data.get("format") != FORMAT_VERSION:
            raise StoreError(f"store manifest format {data.get('format')} is not supported")
        return cls(version=int(data["version"]), tables=dict(data["tables"]),
                   retired=list(data.get("retired", [])))


class AnalyticStore:
    """A folder of Parquet tables read through DuckDB."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def read_manifest(self) -> Manifest:
        """The committed manifest (an empty one for a store never written)."""
        try:
            return Manifest.from_json(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Manifest()
        except (ValueError, KeyError) as exc:
            raise StoreError(f"store manifest {self.manifest_path} is unreadable: {exc}") from None

    def engine(self, writer: bool = False) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB connection configured from settings (no views).

        Only a writer's connection spills to the store's staging folder; a reader's never
        writes inside the store (which may be mounted read-only for a server).
        """
        config: dict[str, Any] = {"memory_limit": self.settings.duckdb_memory_limit}
        if self.settings.duckdb_threads:
            config["threads"] = self.settings.duckdb_threads
        con = duckdb.connect(config=config)
        if writer:
            temp = self.root / "_staging" / "_duckdb_tmp"
            temp.mkdir(parents=True, exist_ok=True)
            run(con, f"SET temp_directory = {lit(str(temp))}")
        run(con, "SET TimeZone = 'UTC'")
        run(con, "SET enable_progress_bar = true")  # measured for cswb's own progress display
        run(con, "SET enable_progress_bar_print = false")
        # The lookup tables an ingest joins are tiny and the scanned file is huge, but the file's
        # size is unknown to the planner, which may build the hash table on the file's side.
        run(con, "SET disabled_optimizers = 'build_side_probe_side'")
        return con

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with one view per table over the committed files."""
        con = self.engine()
        self.create_views(con, self.read_manifest())
        return con

    def create_views(self, con: duckdb.DuckDBPyConnection, manifest: Manifest) -> None:
        """(Re)create the table views of ``con`` from ``manifest``."""
        for table in TABLES:
            run(con, f"CREATE OR REPLACE VIEW {table} AS {self.table_sql(table, manifest)}")

    def table_sql(self, table: str, manifest: Manifest) -> str:
        """SQL reading one table of the store as of ``manifest``."""
        files = [str(self.root / f["path"]) for f in manifest.files(table)]
        if not files:
            return empty_select(table)
        listing = "[" + ", ".join(lit(p) for p in files) + "]"
        scan = f"read_parquet({listing}, union_by_name = true)"
        if table == "calls":
            entries = manifest.files(table)
            classes = (self.table_sql("call_classes", manifest)
                       if manifest.files("call_classes") else None)
            if any(e.get("constants") for e in entries):
                scan = call_files_sql([(self.root / e["path"], e) for e in entries])
                return calls_view_sql(_present_columns(entries), scan, False, classes)
            implicit = any(e.get("implicit_rows") for e in entries)
            if implicit:
                scan = f"read_parquet({listing}, union_by_name = true, file_row_number = true)"
            return calls_view_sql(_present_columns(entries), scan, implicit, classes)
        columns = ", ".join(name for name, _ in TABLES[table])
        if table == "call_classes":  # the latest classification of a key wins
            return (f"SELECT {columns} FROM {scan} QUALIFY row_number() OVER "
                    "(PARTITION BY class_key ORDER BY classified_at DESC) = 1")
        return f"SELECT {columns} FROM {scan}"

    @contextlib.contextmanager
    def transaction(self, timeout: float = 30.0) -> Iterator[Transaction]:
        """Exclusive write access; commits on normal exit, leaves no trace on error."""
        self.root.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(self.root / "_lock", timeout):
            self._collect_garbage()
            tx = Transaction(self, self.read_manifest())
            try:
                yield tx
                tx.commit()
            finally:
                shutil.rmtree(tx.staging, ignore_errors=True)

    def _collect_garbage(self) -> None:
        """Remove files no reader can need (the caller holds the lock).

        Files a commit dropped stay ``retired`` for ``store_retire_seconds`` so that readers
        still scanning the previous version finish; files never referenced by any manifest
        (left by a writer that died) go at once.
        """
        manifest = self.read_manifest()
        referenced = {f["path"] for files in manifest.tables.values() for f in files}
        now = time.time()
        grace = self.settings.store_retire_seconds
        keep = [r for r in manifest.retired if now - float(r["at"]) < grace]
        referenced.update(r["path"] for r in keep)
        for table in TABLES:
            folder = self.root / table
            if not folder.is_dir():
                continue
            for path in folder.glob("*.parquet"):
                if path.relative_to(self.root).as_posix() not in referenced:
                    path.unlink(missing_ok=True)
        staging = self.root / "_staging"
        if staging.is_dir():
            for child in staging.iterdir():
                if child.name != "_duckdb_tmp":
                    shutil.rmtree(child, ignore_errors=True)


class Transaction:
    """Files added to and removed from tables, made visible together by :meth:`commit`."""

    def __init__(self, store: AnalyticStore, base: Manifest) -> None:
        self.store = store
        self.base = base
        self.id = uuid.uuid4().hex[:12]
        self.staging = store.root / "_staging" / self.id
        self.staging.mkdir(parents=True, exist_ok=True)
        self._added: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
        self._removed: dict[str, set[str]] = {}
        self._annotated: dict[str, dict[str, dict[str, Any]]] = {}

    def staged_path(self, table: str, suffix: str = "") -> Path:
        """A fresh path under the staging folder for a file of ``table``."""
        return self.staging / f"{table}-{self.id}-{uuid.uuid4().hex[:8]}{suffix}.parquet"

    def add(self, table: str, path: Path, **meta: Any) -> None:
        """Add a Parquet file (written under :attr:`staging`) to ``table`` at commit."""
        if table not in TABLES:
            raise StoreError(f"unknown table {table!r}")
        self._added.setdefault(table, []).append((path, meta))

    def added_files(self, table: str, **meta: Any) -> list[tuple[Path, dict[str, Any]]]:
        """Files (and their metadata) added to ``table`` so far whose metadata matches ``meta``."""
        return [(path, m) for path, m in self._added.get(table, [])
                if all(m.get(k) == v for k, v in meta.items())]

    def remove(self, table: str, relpath: str) -> None:
        """Drop a committed file from ``table`` at commit."""
        self._removed.setdefault(table, set()).add(relpath)

    def annotate(self, table: str, relpath: str, **meta: Any) -> None:
        """Update the manifest metadata of a committed file of ``table`` at commit."""
        self._annotated.setdefault(table, {}).setdefault(relpath, {}).update(meta)

    def commit(self) -> Manifest:
        """Move staged files into place and switch the manifest atomically.

        A transaction that added, removed and annotated nothing writes nothing.
        """
        if not self._added and not self._removed and not self._annotated:
            return self.base
        root = self.store.root
        tables = {t: list(files) for t, files in self.base.tables.items()}
        for table, removed in self._removed.items():
            tables[table] = [f for f in tables.get(table, []) if f["path"] not in removed]
        for table, notes in self._annotated.items():
            tables[table] = [{**f, **notes.get(f["path"], {})} for f in tables.get(table, [])]
        for table, added in self._added.items():
            (root / table).mkdir(exist_ok=True)
            for path, meta in added:
                fsync_file(path)
                relpath = f"{table}/{path.name}"
                os.replace(path, root / relpath)
                tables.setdefault(table, []).append({"path": relpath, **meta})
        now, grace = time.time(), self.store.settings.store_retire_seconds
        retired = [r for r in self.base.retired if now - float(r["at"]) < grace]
        retired += [{"path": p, "at": now} for removed in self._removed.values() for p in removed]
        manifest = Manifest(version=self.base.version + 1, tables=tables, retired=retired)
        _fsync_dir_entries(root, self._added)
        atomic_write(self.store.manifest_path, manifest.to_json())
        log.debug("store version %d committed", manifest.version)
        return manifest


def _present_columns(entries: list[dict[str, Any]]) -> set[str] | None:
    """Columns some call file gives (None: a file does not say, so assume all)."""
    present: set[str] = set()
    for entry in entries:
        if "columns" not in entry:
            return None
        present.update(entry["columns"])
        present.update(entry.get("constants", {}))
        if entry.get("implicit_rows"):
            present.add("source_row")
    return present


def call_file_sql(path: Path, entry: dict[str, Any]) -> str:
    """SQL of one call file's rows with what its manifest ``entry`` keeps outside them.

    A batch's constants (source, agency, batch id, file hash, time zone, precisions) are kept
    once in the entry rather than in every row, and come back here as literals; a precision
    only where its timestamp is set. Rows numbered implicitly get their position as source row.
    """
    columns = ["*"]
    for name, value in entry.get("constants", {}).items():
        if name.endswith("_precision"):
            stamp = name.removesuffix("_precision") + "_at"
            columns.append(f"CASE WHEN {stamp} IS NOT NULL THEN {lit(value)} END AS {name}")
        else:
            columns.append(f"{lit(value)} AS {name}")
    options = ""
    if entry.get("implicit_rows"):
        columns[0] = "* EXCLUDE (file_row_number)"
        columns.append("file_row_number + 1 AS source_row")
        options = ", file_row_number = true"
    return f"(SELECT {', '.join(columns)} FROM read_parquet({lit(str(path))}{options}))"


def call_files_sql(files: list[tuple[Path, dict[str, Any]]]) -> str:
    """SQL of the rows of several call files (see :func:`call_file_sql`), columns by name."""
    return "(" + " UNION ALL BY NAME ".join(
        f"SELECT * FROM {call_file_sql(path, entry)}" for path, entry in files) + ")"


def open_analytic_store(url: str, settings: Settings) -> AnalyticStore:
    """Open the analytic store named by ``url`` (``duckdb:///relative`` or ``duckdb:////abs``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise StoreError(f"store URL {url!r} has no scheme; use duckdb:///path/to/folder")
    if scheme == "duckdb":
        if not rest.startswith("/"):
            raise StoreError(f"store URL {url!r}: write duckdb:///relative or duckdb:////absolute")
        return AnalyticStore(Path(rest[1:]), settings)
    if scheme == "spark":
        raise StoreError("the Spark backend is planned but not available in this version")
    raise StoreError(f"unknown store URL scheme {scheme!r}; cswb knows duckdb://")


@contextlib.contextmanager
def _exclusive_lock(path: Path, timeout: float) -> Iterator[None]:
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"another process is writing to the store {path.parent}; try again later"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_dir_entries(root: Path, added: dict[str, Any]) -> None:
    for table in added:
        fsync_dir(root / table)
