"""One ingest batch: a file, through its mapping, into the analytic store, losing nothing.

The batch runs inside one store transaction, so it is atomic: killed at any point, the store
is exactly as before. The row work is three set-based passes in DuckDB:

1. **ids** - the record id of every row is computed and grouped; ids that repeat in the file or
   are already stored are kept aside (a small table), and the reader's structural rejects (with
   their row numbers) are collected;
2. **map** - the mapping's SQL (:mod:`cswb.ingest.transform`) turns every row into a canonical
   call and writes it, in one streaming copy, to one of three Parquet partitions: ``stored``,
   ``quarantine`` (cannot become a call) or ``resolve`` (its id repeats or is already stored);
3. **resolve** - only the ``resolve`` rows: exact repeats are counted as duplicates, the last of
   conflicting versions wins (earlier ones are quarantined), and a record already stored is
   either unchanged (a duplicate) or updated, with the change logged in ``call_changes``.

Every row read ends up counted exactly once: ``read = inserted + updated + unchanged +
duplicate + quarantined`` (:attr:`BatchSummary.reconciles`).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from cswb import __version__
from cswb.classify.narrative import narrative_rules_version
from cswb.classify.store import classify_new_keys
from cswb.domain.calls import CONTENT_FIELDS, calls_view_sql
from cswb.domain.quality import QUARANTINE_DESCRIPTIONS, QuarantineReason
from cswb.errors import MappingError, SourceFileError
from cswb.ingest.mapping import Mapping
from cswb.ingest.progress import Progress, SilentProgress, watch_query
from cswb.ingest.readers import (
    CsvLanding,
    Landing,
    Reject,
    SourceFile,
    is_quoted_newline_error,
    open_landing,
)
from cswb.ingest.rownumbers import row_sql, step_table
from cswb.ingest.timezones import day_table
from cswb.ingest.transform import ASIDE, CODE_DIM, LOCATION_DIM, CallSql, Context, ident, lit
from cswb.linkage.writer import LinkageWriter
from cswb.logging import get_logger
from cswb.settings import Settings
from cswb.storage.analytic import AnalyticStore, Transaction, call_file_sql, call_files_sql
from cswb.storage.sql import run, scalar
from cswb.storage.tables import column_list

if TYPE_CHECKING:
    from cswb.classify import Classifier

log = get_logger("ingest")

_PARQUET = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"
"""Level 1: at ten million rows the default level costs a tenth of the ingest for 3% smaller
files."""


@dataclass
class BatchSummary:
    """What one batch did, row by row, reconciled."""

    batch_id: str
    source: str
    file_name: str
    file_sha256: str = ""
    file_format: str = ""
    encoding: str | None = None
    delimiter: str | None = None
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicate: int = 0
    quarantined: int = 0
    flagged: int = 0
    classes_added: int = 0
    linked: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def stored(self) -> int:
        return self.inserted + self.updated

    @property
    def reconciles(self) -> bool:
        """Every row read is accounted for exactly once."""
        accounted = self.inserted + self.updated + self.unchanged + self.duplicate
        return self.rows_read == accounted + self.quarantined

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.update(stored=self.stored, reconciles=self.reconciles)
        return data


def ingest_file(path: Path, mapping: Mapping, store: AnalyticStore, settings: Settings,
                progress: Progress | None = None, *,
                classifier: Classifier | None = None) -> BatchSummary:
    """Ingest ``path`` through ``mapping`` into ``store`` as one atomic batch.

    The batch's new call classes are classified with ``classifier`` (by default the one
    :func:`cswb.classify.load_classifier` builds from ``settings``) unless the settings turn
    classification at ingest off.
    """
    progress = progress or SilentProgress()
    if classifier is None and settings.classify_at_ingest:
        from cswb.classify import load_classifier

        classifier = load_classifier(settings)
    started = time.monotonic()
    source = SourceFile.inspect(Path(path), mapping.file.format)
    summary = BatchSummary(_new_batch_id(), mapping.name, source.path.name,
                           file_format=source.file_format)
    # opened first: a mapping with linkage columns and no keyring stops before any work
    linkage = LinkageWriter.open(mapping, settings) if mapping.identifying.linkage else None
    hasher = threading.Thread(target=source.compute_hash, name="cswb-hash")
    hasher.start()
    try:
        with store.transaction() as tx:
            if linkage is not None:
                linkage.store.recover(f["batch_id"] for f in tx.base.files("batches"))
            con = store.engine(writer=True)
            try:
                store.create_views(con, tx.base)
                run = _BatchRun(con, tx, mapping, settings=settings, source=source,
                                summary=summary, progress=progress, classifier=classifier,
                                linkage=linkage)
                try:
                    run.execute(hasher)
                except _PaddedReaderRefusedError as refused:  # outside the reads it retries
                    raise SourceFileError(
                        f"the file cannot be read: {refused.reason}") from None
            finally:
                con.close()
        # the analytic store holds the batch: its identifiers become visible (a writer dying
        # here leaves them pending, and the next one commits them: the manifest decides)
        if linkage is not None:
            summary.linked = linkage.store.commit_batch(summary.batch_id)
    except BaseException:
        if linkage is not None:
            _discard_failed(linkage, store, summary.batch_id)
        raise
    finally:
        hasher.join()
        if linkage is not None:
            linkage.store.dispose()
    summary.seconds = round(time.monotonic() - started, 3)
    log.info("batch %s of %s: read %d, stored %d, quarantined %d, duplicates %d",
             summary.batch_id, summary.source, summary.rows_read, summary.stored,
             summary.quarantined, summary.duplicate + summary.unchanged)
    return summary


def _discard_failed(linkage: LinkageWriter, store: AnalyticStore, batch_id: str) -> None:
    """Delete a failed batch's pending identifiers now, unless the analytic store committed
    it (then the next writer commits them). If either store cannot be read, the next
    writer's recovery settles them instead."""
    try:
        held = {f["batch_id"] for f in store.read_manifest().files("batches")}
        if batch_id not in held:
            linkage.store.discard_batch(batch_id)
    except Exception:  # the batch's own error is the one to report
        log.warning("batch %s failed; its pending linkage rows are left to the next "
                    "writer's recovery", batch_id)


def _new_batch_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


class _BatchRun:
    """The passes of one batch, sharing a DuckDB connection and a store transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, tx: Transaction, mapping: Mapping, *,
                 settings: Settings, source: SourceFile, summary: BatchSummary,
                 progress: Progress, classifier: Classifier | None,
                 linkage: LinkageWriter | None = None) -> None:
        self.con, self.tx, self.m, self.settings = con, tx, mapping, settings
        self.linkage = linkage
        self.classifier = classifier
        self.source, self.summary, self.progress = source, summary, progress
        self.started_at = datetime.now(UTC)
        self.main = tx.staged_path("calls")
        self.numbered = True
        self.steps = (1, 0)
        self.routes: dict[str, int] = {}

    def execute(self, hasher: threading.Thread) -> None:
        location = self.m.column_spec("location")
        landing = open_landing(self.source, self.m.file, self.settings.ingest_max_line_bytes,
                               self.tx.staging, self.con, identifying=self.m.identifying.all,
                               locations=location.source_columns if location else ())
        self.summary.encoding, self.summary.delimiter = landing.encoding, landing.delimiter
        self._check_linkage_columns(landing)
        ctx = self._context(landing)
        self._register_zone()
        # CSV rows are not numbered while read (that would serialise the reader): a row's
        # number is its position in the ordered output, plus the rejected rows before it.
        self.numbered = landing.file_format != "csv"
        landing, rejects = self._read(landing,
                                      lambda lnd: self._prepass(lnd, CallSql(self.m, ctx)))
        hasher.join()
        self.summary.file_sha256 = self.source.sha256
        self.sql = CallSql(self.m, replace(ctx, file_sha256=self.source.sha256,
                                           numbered=self.numbered))
        first, found = landing, rejects  # another reader has none yet: it reads afresh
        landing, rejects = self._read(landing, lambda lnd: self._map(
            lnd, found if lnd is first else lnd.rejects(self.con)))
        self._resolve()
        self._classify()
        self._write_quarantine(rejects)
        self._write_quality()
        self._write_batch_row()
        self._write_linkage(landing)
        self.progress.phase("committing")

    # -- setup ---------------------------------------------------------------------------

    def _read(self, landing: Landing, step: Callable[[Landing], list[Reject]]
              ) -> tuple[Landing, list[Reject]]:
        """``step`` over ``landing``, or over the next reader each time DuckDB's reader stops
        on the file (:meth:`_next_reader`); the landing that read it, and what ``step`` gave."""
        while True:
            try:
                return landing, step(landing)
            except _PaddedReaderRefusedError as refused:
                landing = self._next_reader(landing, refused)

    def _next_reader(self, landing: Landing, refused: _PaddedReaderRefusedError) -> Landing:
        """The next way to read a CSV file DuckDB's reader stopped on: the strict reader (for
        quoted line breaks, or a row the padded one could not pad), which rejects the rows of
        the wrong shape with their numbers; then, for a file mixing line breaks (CRLF, LF,
        CR), a copy with every line break LF, read padded again."""
        if isinstance(landing, CsvLanding):
            if landing.padded:
                log.info("%s: %s; read by the strict CSV reader", landing.path.name,
                         refused.reason)
                return landing.strict()
            if not landing.newlines_normalised and "invalid state" in refused.reason:
                log.info("%s: %s; line breaks made LF", landing.path.name, refused.reason)
                return landing.with_newlines_normalised()
        raise SourceFileError(f"the file cannot be read: {refused.reason}")

    def _context(self, landing: Landing) -> Context:
        today = datetime.now(UTC).replace(tzinfo=None)
        low = datetime.combine(self.settings.ingest_min_date, datetime.min.time())
        high = today + timedelta(days=self.settings.ingest_future_days)
        return Context(landing.columns, self.summary.batch_id, "", low, high)

    def _register_zone(self) -> None:
        end = (datetime.now(UTC) + timedelta(days=self.settings.ingest_future_days + 1)).date()
        table = day_table(self.m.time_zone, self.settings.ingest_min_date, end)
        self.con.register("tz_days", table)

    # -- pass 1: ids ---------------------------------------------------------------------

    def _prepass(self, landing: Landing, sql: CallSql) -> list[Reject]:
        """Repeated or stored ids, the lookup tables, and the reader's rejects, in one scan."""
        self.progress.phase("checking record ids")
        # Where rows are numbered while read, the rejects must be known before the mapping
        # pass: every column is touched so the reader validates every field, as that pass will
        # (a reader skips the checks of columns a query does not read). A CSV's rows are
        # numbered after the mapping pass, from its own rejects: reading only the columns the
        # ids and lookups need costs a third less here.
        touch = "true"
        if self.numbered:
            touch = " + ".join(f"coalesce(strlen({ident(c)}), 0)"
                               for c in landing.columns) + " >= 0"
        stored = self._stored_filter()
        if stored:
            run(self.con, "CREATE OR REPLACE TEMP TABLE stored_ids AS SELECT DISTINCT "
                          f"hash(source_record_id) AS h FROM calls WHERE {stored}")
        query = sql.prepass_sql(landing.scan(numbered=False), touch,
                                "stored_ids" if stored else None)
        with watch_query(self.con, self.progress):
            _run(self.con, f"CREATE OR REPLACE TEMP TABLE prepass AS {query}")
        run(self.con, "CREATE OR REPLACE TEMP TABLE resolve_ids AS SELECT _rh AS h FROM "
                      "prepass WHERE _kind = 'rid'")
        if sql.code_keys():
            run(self.con, f"CREATE OR REPLACE TEMP TABLE {CODE_DIM}_text AS " + sql.code_dim_sql(
                f"(SELECT {', '.join(sql.code_keys())} FROM prepass WHERE _kind = 'code')"))
            _typed_as_enums(self.con, f"{CODE_DIM}_text", CODE_DIM, sql.code_text_columns())
        if sql.has_location():
            run(self.con, f"CREATE OR REPLACE TEMP TABLE {LOCATION_DIM} AS "
                + sql.location_dim_sql("(SELECT location__raw FROM prepass WHERE "
                                       "_kind = 'location' AND location__raw IS NOT NULL)"))
        return landing.rejects(self.con)

    def _stored_filter(self) -> str | None:
        """SQL filter on the calls view for this source's stored calls (None if none)."""
        if not any(f.get("source") == self.m.name for f in self.tx.base.files("calls")):
            return None
        return f"source = {lit(self.m.name)}"

    # -- pass 2: map ---------------------------------------------------------------------

    def _map(self, landing: Landing, rejects: list[Reject]) -> list[Reject]:
        """The mapping pass; returns the reader's rejects (final: the pass read every field)."""
        self.progress.phase("mapping calls")
        row_expr, join = "_ord", ""
        if rejects and self.numbered:
            row_expr, join = row_sql("row_steps", *self._register_steps(rejects), "_l._ord")
        source = (f"(SELECT {row_expr} AS _row, _l.* FROM "
                  f"{landing.scan(numbered=self.numbered)} _l {join})")
        has_resolve = scalar(self.con, "SELECT count(*) FROM resolve_ids") > 0
        sql = self.sql
        query = sql.query(source, "resolve_ids" if has_resolve else None,
                          CODE_DIM if sql.code_keys() else None,
                          LOCATION_DIM if sql.has_location() else None,
                          raw_text=landing.text_sql())
        # One file, in file order: stored rows have no _route; the few quarantined and
        # repeated rows stay in it too (the calls view skips them) and are copied out below.
        with watch_query(self.con, self.progress):
            _run(self.con, f"COPY ({query}) TO {lit(str(self.main))} ({_PARQUET})")
        final = landing.rejects(self.con)
        # the id pass of a CSV read fewer columns, so it may have rejected fewer rows
        if (final != rejects if self.numbered
                else not {r.row for r in rejects} <= {r.row for r in final}):
            raise SourceFileError(
                "the file read differently on the second pass (was it changed while being "
                "ingested?); nothing was stored"
            )
        if final and not self.numbered:
            self._register_steps(final)
            self._number_rows()
        self.routes = {route or "stored": int(n) for route, n in run(
            self.con, f"SELECT _route, count(*) FROM read_parquet({lit(str(self.main))}) "
                      "GROUP BY 1")}
        self.summary.rows_read = sum(self.routes.values()) + len(final)
        return final

    def _register_steps(self, rejects: list[Reject]) -> tuple[int, int]:
        """Register the step table turning positions into source rows; (width, total)."""
        table, width, total = step_table([r.row for r in rejects])
        self.con.register("row_steps", table)
        self.steps = (width, total)
        return self.steps

    def _columns(self) -> list[str]:
        """The canonical columns this batch's call files hold (with the source row)."""
        return list(dict.fromkeys([*self.sql.output_columns(), "source_row"]))

    def _compared(self) -> list[str]:
        """Stored columns whose change between two exports is an upstream change."""
        return [c for c in self._columns() if c in CONTENT_FIELDS]

    def _number_rows(self) -> None:
        """Write the main file again with explicit source rows (only when rows were rejected)."""
        width, total = self.steps
        position = "(m.file_row_number + 1)"
        expr, join = row_sql("row_steps", width, total, position)
        numbered = self.tx.staged_path("calls", "-numbered")
        _run(self.con, f"COPY (SELECT m.* EXCLUDE (file_row_number), {expr} AS source_row "
                       f"FROM read_parquet({lit(str(self.main))}, file_row_number = true) m "
                       f"{join}) TO {lit(str(numbered))} ({_PARQUET})")
        self.main.unlink()
        self.main = numbered
        self.numbered = True

    def _main_rows(self) -> str:
        """SQL of every row of the main file, with its source row and the batch's constants."""
        return call_file_sql(self.main, {"constants": self.sql.constants(),
                                         "implicit_rows": not self.numbered})

    def _routed(self, route: str) -> str | None:
        """SQL of the main file's rows sent to ``route`` (None when there are none)."""
        if not self.routes.get(route):
            return None
        return (f"(SELECT *, {_aside_sql()} FROM {self._main_rows()} "
                f"WHERE _route = {lit(route)})")

    # -- pass 3: resolve -----------------------------------------------------------------

    def _file_meta(self) -> dict[str, Any]:
        """Manifest metadata of this batch's call files (see :func:`call_file_sql`)."""
        meta: dict[str, Any] = {"source": self.m.name, "batch_id": self.summary.batch_id,
                                "constants": self.sql.constants()}
        if "narrative" in self.sql.output_columns():
            meta["narrative_rules"] = narrative_rules_version()
        return meta

    def _resolve(self) -> None:
        self.summary.inserted = self.routes.get("stored", 0)
        columns = [c for c in self._columns() if self.numbered or c != "source_row"]
        self.tx.add("calls", self.main, rows=self.summary.inserted,
                    columns=[*columns, "_route"], implicit_rows=not self.numbered,
                    **self._file_meta())
        resolve = self._routed("resolve")
        if resolve is None:
            return
        self.progress.phase("resolving repeated records")
        run(self.con, f"""
            CREATE TEMP TABLE ranked AS
            SELECT *,
                   hash({', '.join(self._compared())}) AS _sig,
                   row_number() OVER w AS _rank,
                   first_value(hash({', '.join(self._compared())})) OVER w AS _last_sig
            FROM {resolve}
            WINDOW w AS (PARTITION BY source_record_id ORDER BY source_row DESC)
        """)
        counts = dict(run(self.con, """
            SELECT CASE WHEN _rank = 1 THEN 'survivor' WHEN _sig = _last_sig THEN 'duplicate'
                        ELSE 'conflict' END, count(*) FROM ranked GROUP BY 1
        """))
        self.summary.duplicate = int(counts.get("duplicate", 0))
        self._compare_with_stored()

    def _compare_with_stored(self) -> None:
        stored = self._stored_filter()
        changed = ", ".join(
            f"CASE WHEN s.{c} IS DISTINCT FROM e.{c} THEN {lit(c)} END"
            for c in self._compared())
        existing = f"(SELECT * FROM calls WHERE {stored or 'false'})"
        run(self.con, f"""
            CREATE TEMP TABLE survivors AS
            SELECT s.*, e.batch_id AS _previous_batch, e.source_record_id IS NOT NULL AS _exists,
                   list_filter([{changed}], lambda x: x IS NOT NULL) AS _changed
            FROM ranked s LEFT JOIN {existing} e ON e.source_record_id = s.source_record_id
            WHERE s._rank = 1
        """)
        row = run(self.con, """
            SELECT count(*) FILTER (WHERE NOT _exists),
                   count(*) FILTER (WHERE _exists AND len(_changed) > 0),
                   count(*) FILTER (WHERE _exists AND len(_changed) = 0) FROM survivors
        """)[0]
        inserted, updated, unchanged = (int(v) for v in row)
        self.summary.inserted += inserted
        self.summary.updated, self.summary.unchanged = updated, unchanged
        if inserted or updated:
            path = self.tx.staged_path("calls", "-resolved")
            _run(self.con, f"COPY (SELECT {', '.join(self._columns())}, _aside FROM survivors "
                           "WHERE NOT _exists "
                           f"OR len(_changed) > 0) TO '{path}' ({_PARQUET})")
            self.tx.add("calls", path, rows=inserted + updated, columns=self._columns(),
                        **self._file_meta())
        if updated:
            self._replace_old_versions()
            self._write_changes()

    def _replace_old_versions(self) -> None:
        """Rewrite the committed files holding old versions of updated calls, without them."""
        run(self.con, """CREATE TEMP TABLE updated_ids AS SELECT source_record_id FROM survivors
                            WHERE _exists AND len(_changed) > 0""")
        for entry in self.tx.base.files("calls"):
            if entry.get("source") != self.m.name:
                continue
            path = self.tx.store.root / entry["path"]
            hit = scalar(self.con,
                f"SELECT count(*) FROM read_parquet({lit(str(path))}) WHERE source_record_id IN "
                "(SELECT source_record_id FROM updated_ids)")
            if not hit:
                continue
            new = self.tx.staged_path("calls", "-rewritten")
            _run(self.con, f"COPY (SELECT * FROM {_with_rows(path, entry)} WHERE "
                           "source_record_id NOT IN (SELECT source_record_id FROM updated_ids)) "
                           f"TO '{new}' ({_PARQUET})")
            meta = {k: v for k, v in entry.items() if k not in ("path", "constants")}
            meta["rows"] = int(entry.get("rows", 0)) - int(hit)
            # the rewritten file holds its source rows and constants as columns
            meta["columns"] = list(dict.fromkeys([*meta.get("columns", []), "source_row",
                                                  *entry.get("constants", {})]))
            meta["implicit_rows"] = False
            self.tx.remove("calls", entry["path"])
            self.tx.add("calls", new, **meta)

    def _write_changes(self) -> None:
        path = self.tx.staged_path("call_changes")
        _run(self.con, f"""
            COPY (SELECT source || ':' || source_record_id AS call_id, source,
                         _previous_batch AS previous_batch_id, batch_id,
                         _changed AS changed_fields, now() AS changed_at
                  FROM survivors WHERE _exists AND len(_changed) > 0)
            TO '{path}' ({_PARQUET})""")
        self.tx.add("call_changes", path, source=self.m.name, batch_id=self.summary.batch_id)

    # -- classification --------------------------------------------------------------------

    def _classify(self) -> None:
        """Classify the call classes of this batch that the store has not seen."""
        files = self.tx.added_files("calls", batch_id=self.summary.batch_id)
        if self.classifier is None or not files:
            return
        self.progress.phase("classifying call types")
        present = {c for _, meta in files for c in [*meta.get("columns", []),
                                                     *meta.get("constants", {})]}
        calls = f"({calls_view_sql(present, call_files_sql(files))})"
        self.summary.classes_added = classify_new_keys(self.con, self.tx, calls, self.classifier)

    # -- linkage zone ------------------------------------------------------------------------

    def _check_linkage_columns(self, landing: Landing) -> None:
        missing = [c for c in self.m.identifying.linkage if c not in landing.columns]
        if self.linkage is not None and missing:
            raise MappingError(f"mapping {self.m.name} sends columns {missing} to the linkage "
                               "zone but the file has no such columns; nothing was stored")

    def _write_linkage(self, landing: Landing) -> None:
        """The identifying values of the records this batch stores, pending in the linkage
        store until the analytic store commits (see :func:`ingest_file`)."""
        if self.linkage is None:
            return
        self.progress.phase("sealing identifiers for the linkage zone")
        files = self.tx.added_files("calls", batch_id=self.summary.batch_id)
        kept = []
        if files:
            present = {c for _, meta in files for c in [*meta.get("columns", []),
                                                         *meta.get("constants", {})]}
            kept.append(f"SELECT source_record_id FROM "
                        f"({calls_view_sql(present, call_files_sql(files))})")
        stored = self._stored_filter()
        if stored:
            kept.append(f"SELECT source_record_id FROM calls WHERE {stored}")
        if not kept:
            return
        rows = f"(SELECT {self.sql.record_id()} AS rid, * FROM " \
               f"({self.sql.stage_trim(landing.scan(numbered=False))}))"
        values = " UNION ALL ".join(
            f"SELECT rid, {lit(c)} AS column_name, trim(CAST({ident(c)} AS VARCHAR)) AS value "
            f"FROM linkage_rows" for c in self.m.identifying.linkage)
        query = f"""
            WITH linkage_rows AS {rows}
            SELECT DISTINCT rid, column_name, value FROM ({values})
            WHERE value IS NOT NULL AND value <> '' AND rid IS NOT NULL
              AND rid IN ({' UNION '.join(kept)})
            ORDER BY rid, column_name, value"""
        reader = self.con.sql(query).to_arrow_reader(self.settings.linkage_chunk_rows)
        self.linkage.write(self.summary.batch_id, reader)

    # -- quarantine, quality, batch row ----------------------------------------------------

    def _write_quarantine(self, rejects: list[Reject]) -> None:
        self.progress.phase("writing quarantine and quality flags")
        parts = []
        quarantine = self._routed("quarantine")
        if quarantine:
            parts.append(f"""SELECT {lit(self.m.name)} AS source, {lit(self.summary.batch_id)}
                AS batch_id, source_row, _reason AS reason,
                CASE WHEN _raw_text IS NOT NULL THEN {_fault_detail()}
                     ELSE array_to_string(dq_flags, '; ') END AS detail,
                _record AS record, _raw_text AS raw_text FROM {quarantine}""")
        if scalar(self.con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'ranked'"):
            # the latest row of a record id (rank 1) is the version kept
            conflicts = ("(SELECT * FROM (SELECT source_row, source_record_id, _record, _rank, "
                         "_sig, _last_sig, max(source_row) OVER (PARTITION BY "
                         "source_record_id) AS _kept FROM ranked) "
                         "WHERE _rank > 1 AND _sig <> _last_sig)")
            parts.append(f"""SELECT {lit(self.m.name)} AS source, {lit(self.summary.batch_id)}
                AS batch_id, source_row, {lit(QuarantineReason.CONFLICTING_DUPLICATE)} AS reason,
                'record id ' || source_record_id || ' repeats with different content; row '
                || _kept || ' is the version kept'
                AS detail, _record AS record, NULL::VARCHAR AS raw_text
                FROM {conflicts}""")
        if rejects:
            self.con.register("rejects_table", _rejects_arrow(rejects))
            parts.append(f"""SELECT {lit(self.m.name)} AS source, {lit(self.summary.batch_id)}
                AS batch_id, row AS source_row, reason, detail,
                NULL::MAP(VARCHAR, VARCHAR) AS record, raw_text FROM rejects_table""")
        if not parts:
            return
        path = self.tx.staged_path("quarantine")
        _run(self.con, f"COPY ({' UNION ALL '.join(parts)}) TO '{path}' ({_PARQUET})")
        reasons = run(self.con,
                      f"SELECT reason, count(*) FROM read_parquet({lit(str(path))}) GROUP BY 1")
        self.summary.reasons = {r: int(n) for r, n in reasons}
        self.summary.quarantined = sum(self.summary.reasons.values())
        self.tx.add("quarantine", path, source=self.m.name, batch_id=self.summary.batch_id)

    def _write_quality(self) -> None:
        files = self.tx.added_files("calls", batch_id=self.summary.batch_id)
        if not files:
            return
        flagged = " UNION ALL BY NAME ".join(
            f"SELECT * FROM {_with_rows(f, meta)} WHERE dq_flags IS NOT NULL"
            + (" AND _route IS NULL" if "_route" in meta.get("columns", []) else "")
            for f, meta in files)
        path = self.tx.staged_path("call_quality")
        _run(self.con, f"""
            COPY (SELECT source || ':' || source_record_id AS call_id, source, batch_id,
                         source_row, split_part(flag, ':', 1) AS field,
                         split_part(flag, ':', 2) AS problem,
                         {ASIDE["_dq_orig"]}[split_part(flag, ':', 1)] AS original
                  FROM (SELECT *, unnest(dq_flags) AS flag FROM ({flagged})))
            TO '{path}' ({_PARQUET})""")
        rows = run(self.con, f"""SELECT field || ':' || problem, count(*),
            count(DISTINCT call_id) FROM read_parquet({lit(str(path))}) GROUP BY 1""")
        if not rows:
            return
        self.summary.problems = {k: int(n) for k, n, _ in rows}
        self.summary.flagged = int(scalar(
            self.con, f"SELECT count(DISTINCT call_id) FROM read_parquet({lit(str(path))})"))
        self.tx.add("call_quality", path, source=self.m.name, batch_id=self.summary.batch_id)

    def _write_batch_row(self) -> None:
        s = self.summary
        row = {
            "batch_id": s.batch_id, "source": s.source, "agency": self.m.agency,
            "mapping_sha256": hashlib.sha256(self.m.model_dump_json().encode()).hexdigest(),
            "file_name": s.file_name, "file_sha256": s.file_sha256,
            "file_bytes": self.source.size, "file_format": s.file_format,
            "encoding": s.encoding, "delimiter": s.delimiter,
            "started_at": self.started_at, "finished_at": datetime.now(UTC),
            "rows_read": s.rows_read, "rows_inserted": s.inserted, "rows_updated": s.updated,
            "rows_unchanged": s.unchanged, "rows_duplicate": s.duplicate,
            "rows_quarantined": s.quarantined, "rows_flagged": s.flagged,
            "cswb_version": __version__,
        }
        self.con.register("batch_row", pa.Table.from_pylist([row]))
        path = self.tx.staged_path("batches")
        _run(self.con, f"COPY (SELECT {column_list('batches')} FROM batch_row) TO '{path}' "
                       f"({_PARQUET})")
        self.tx.add("batches", path, source=s.source, batch_id=s.batch_id)
        if not s.reconciles:
            raise SourceFileError(
                f"batch {s.batch_id} does not reconcile (read {s.rows_read}, accounted "
                f"{s.stored + s.unchanged + s.duplicate + s.quarantined}); nothing was stored"
            )


ENUM_LIMIT = 4096
"""The most distinct values a lookup's text column may have to be typed ``ENUM``. DuckDB
writes an ``ENUM`` column to Parquet from its indices (about a quarter of the cost of a
``VARCHAR`` one, whose every value the writer hashes into a dictionary), but puts the whole
``ENUM`` dictionary in every row group. The file holds plain text either way. About 5 CPU s
less at ten million rows."""


def _typed_as_enums(con: duckdb.DuckDBPyConnection, source: str, target: str,
                    columns: list[str]) -> None:
    """Create table ``target`` from ``source`` with each of ``columns`` that has at most
    :data:`ENUM_LIMIT` distinct values typed as an ``ENUM`` of them."""
    casts = []
    for column in columns:
        values = [v for (v,) in run(con, f"SELECT DISTINCT {column} FROM {source} WHERE "
                                         f"{column} IS NOT NULL LIMIT {ENUM_LIMIT + 1}")]
        if values and len(values) <= ENUM_LIMIT:
            members = ", ".join(lit(v) for v in sorted(values))
            casts.append(f"CAST({column} AS ENUM({members})) AS {column}")
    replaced = f" REPLACE ({', '.join(casts)})" if casts else ""
    run(con, f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT *{replaced} FROM {source}")


def _aside_sql() -> str:
    """SQL of the values the main query set aside (see :data:`ASIDE`), as columns."""
    return ", ".join(f"{expr} AS {name}" for name, expr in ASIDE.items())


def _fault_detail() -> str:
    """SQL: the detail of a row the reader yielded with a fault (its reason, described)."""
    cases = " ".join(f"WHEN {lit(reason)} THEN {lit(text)}"
                     for reason, text in QUARANTINE_DESCRIPTIONS.items())
    return f"CASE _reason {cases} END"


def _with_rows(path: Path, meta: dict[str, Any]) -> str:
    """SQL reading one call file with its source rows and constants (see call_file_sql)."""
    return call_file_sql(path, meta)


def _rejects_arrow(rejects: list[Reject]) -> pa.Table:
    return pa.table({
        "row": pa.array([r.row for r in rejects], pa.int64()),
        "reason": pa.array([str(r.reason) for r in rejects], pa.string()),
        "detail": pa.array([r.detail for r in rejects], pa.string()),
        "raw_text": pa.array([r.raw_text for r in rejects], pa.string()),
    })


class _PaddedReaderRefusedError(Exception):
    """The padded CSV reader stopped (a quoted line break, or a row it could not pad next to
    other faults): the strict reader takes over."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_SQL_BUGS = (duckdb.BinderException, duckdb.CatalogException, duckdb.ParserException,
             duckdb.InternalException, duckdb.NotImplementedException)


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Run SQL; a DuckDB error about the input becomes a clear :class:`SourceFileError`.

    The engine's message may quote the file ("Original Line: ..."), which may identify
    someone: only :func:`_input_problem`'s summary of it is ever repeated.
    """
    try:
        run(con, sql)
    except _SQL_BUGS:
        raise
    except duckdb.Error as exc:
        if is_quoted_newline_error(exc):
            raise _PaddedReaderRefusedError("quoted line breaks") from None
        if isinstance(exc, duckdb.ConversionException | duckdb.OutOfRangeException):
            # the mapping's SQL guards every conversion, so this is a gap in those guards
            raise SourceFileError(
                f"a value in the file could not be converted ({type(exc).__name__}); nothing "
                "was stored. Please report this with the mapping: cswb should have flagged "
                "the value instead") from None
        problem = _input_problem(str(exc))
        if "CSV" in problem:
            raise _PaddedReaderRefusedError(problem) from None
        raise SourceFileError(f"the file cannot be read: {problem}") from None


_SAFE_LINES = ("CSV Error on Line", "Expected Number of Columns", "Invalid Input Error",
               "IO Error", "Unexpected end", "Error when sniffing", "Invalid unicode")


def _input_problem(message: str) -> str:
    """The parts of a DuckDB error about the input that never quote its content: the kind of
    error and where, without the line itself or any value."""
    kept = [text.replace("CSV Error", "CSV error") for line in message.splitlines()
            if (text := line.strip()).startswith(_SAFE_LINES)
            and "'" not in text and '"' not in text]
    return "; ".join(kept)[:300] or "the reader stopped"
