"""Classification in the analytic store: once per distinct class key, never per call.

A call's classification depends only on its class key's inputs (source, initial and final
call types, raw disposition, raw priority; see :data:`cswb.domain.calls.CLASS_KEY_FIELDS`).
Ingest classifies the keys of a batch that the store has not seen and adds them to the
``call_classes`` table; the ``calls`` view joins each call to its class. Ten million calls with
twenty thousand distinct keys cost twenty thousand classifications.

:func:`apply_classifier` re-classifies a store after a rule, model or override change: it runs
the classifier over the stored keys (cheap) and rewrites the small ``call_classes`` table only
when a result changed. Call files are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from cswb.classify.narrative import narrative_flags_sql, narrative_rules_version
from cswb.domain.calls import CLASS_KEY_FIELDS
from cswb.errors import StoreError
from cswb.logging import get_logger
from cswb.storage.sql import lit, run, scalar
from cswb.storage.tables import TABLES, column_list

if TYPE_CHECKING:
    from cswb.classify import Classifier
    from cswb.storage.analytic import AnalyticStore, Transaction

log = get_logger("classify")

KEY_COLUMNS: tuple[str, ...] = ("class_key", *CLASS_KEY_FIELDS, "priority")
"""Columns of a class: its key, the inputs the key hashes, and the normalised priority."""

RESULT_COLUMNS: tuple[str, ...] = (
    "category", "flags", "confidence", "decided_by", "taxonomy_version", "unknown_reason",
    "review",
)
"""Columns a classifier fills for each class."""

_PARQUET = "FORMAT parquet, COMPRESSION zstd"


def distinct_keys_sql(calls: str) -> str:
    """SQL of the distinct classes of ``calls`` (SQL of rows with the canonical columns)."""
    cols = ", ".join(KEY_COLUMNS)
    # the normalised priority follows from the raw one within a source; any value will do
    return (f"SELECT {', '.join(KEY_COLUMNS[:-1])}, max(priority) AS priority "
            f"FROM (SELECT {cols} FROM {calls}) GROUP BY ALL")


def classify_new_keys(con: duckdb.DuckDBPyConnection, tx: Transaction, calls: str,
                      classifier: Classifier) -> int:
    """Classify the classes of ``calls`` the store does not hold yet; add them to ``tx``.

    ``con`` has the store's views as of the transaction's base. Returns how many classes were
    added.
    """
    run(con, f"CREATE OR REPLACE TEMP TABLE batch_keys AS {distinct_keys_sql(calls)}")
    _check_unique(con, "batch_keys")
    run(con, "CREATE OR REPLACE TEMP TABLE new_keys AS SELECT * FROM batch_keys "
             "WHERE class_key NOT IN (SELECT class_key FROM call_classes)")
    keys = con.sql("SELECT * FROM new_keys ORDER BY class_key").to_arrow_table()
    if keys.num_rows == 0:
        return 0
    return write_classes(con, tx, classified(keys, classifier))


def classified(keys: pa.Table, classifier: Classifier) -> pa.Table:
    """``keys`` (columns :data:`KEY_COLUMNS`) with the classifier's results, as call_classes."""
    if keys.num_rows == 0:
        return keys
    inputs = keys.select(list(KEY_COLUMNS[1:]))
    results = classifier.classify_keys(inputs)
    if results.num_rows != keys.num_rows:
        raise StoreError(f"the classifier returned {results.num_rows} results for "
                         f"{keys.num_rows} call classes")
    now = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    columns = {name: keys.column(name) for name in KEY_COLUMNS}
    columns.update({name: results.column(name) for name in RESULT_COLUMNS})
    columns["classifier_version"] = pa.array([classifier.version] * keys.num_rows, pa.string())
    columns["classified_at"] = pa.array([now.as_py()] * keys.num_rows, now.type)
    return pa.table(columns)


def write_classes(con: duckdb.DuckDBPyConnection, tx: Transaction,
                  *parts: pa.Table) -> int:
    """Stage the classes of ``parts`` as one call_classes file of ``tx``; return its rows."""
    casts = ", ".join(f"CAST({name} AS {sql_type}) AS {name}"
                      for name, sql_type in TABLES["call_classes"])
    selects = []
    for i, part in enumerate(p for p in parts if p.num_rows):
        con.register(f"classes_{i}", part)
        selects.append(f"SELECT {casts} FROM classes_{i}")
    if not selects:
        return 0
    path = tx.staged_path("call_classes")
    run(con, f"COPY ({' UNION ALL '.join(selects)}) TO {lit(str(path))} ({_PARQUET})")
    rows = int(scalar(con, f"SELECT count(*) FROM read_parquet({lit(str(path))})"))
    for i in range(len(selects)):
        con.unregister(f"classes_{i}")
    tx.add("call_classes", path, rows=rows)
    return rows


def _check_unique(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Two different inputs with one class key (a 64-bit hash collision) would mix classes."""
    clash = scalar(con, f"""
        SELECT count(*) FROM (
            SELECT class_key FROM (SELECT {', '.join(KEY_COLUMNS[:-1])} FROM {table}
                                   UNION SELECT {', '.join(KEY_COLUMNS[:-1])} FROM call_classes)
            GROUP BY class_key HAVING count(*) > 1)""")
    if clash:
        raise StoreError(f"{clash} class keys are shared by different call types (a hash "
                         "collision); please report this: nothing was stored")


@dataclass
class ApplySummary:
    """What re-classifying a store changed."""

    classes: int = 0
    reclassified: int = 0
    changed: int = 0
    added: int = 0
    calls_changed: int = 0
    narrative_files: int = 0
    """Call files written under other narrative flag rules that were checked."""
    narrative_calls_changed: int = 0
    """Calls whose narrative flags changed (their files rewritten)."""


def apply_classifier(store: AnalyticStore, classifier: Classifier, *,
                     everything: bool = False) -> ApplySummary:
    """Bring every class of ``store`` up to ``classifier``; rewrite call_classes if needed.

    Classes decided by another classifier version (or all, with ``everything``) are classified
    again, and classes of stored calls with no classification yet are added. The call files
    are never rewritten for this; only the small call_classes table is, and only when a result
    changed. Call files with narratives written under other flag rules get their narrative flags
    recomputed first (a file is rewritten only where a call's flags change).
    """
    summary = ApplySummary()
    _refresh_narratives(store, summary)
    with store.transaction() as tx:
        con = store.engine(writer=True)
        try:
            store.create_views(con, tx.base)
            current = con.sql(f"SELECT {column_list('call_classes')} FROM call_classes "
                              "ORDER BY class_key").to_arrow_table()
            summary.classes = current.num_rows
            stale = (current if everything else current.filter(
                pc.invert(pc.equal(current.column("classifier_version"), classifier.version))))
            summary.reclassified = stale.num_rows
            fresh = classified(stale.select(list(KEY_COLUMNS)), classifier)
            changed_keys = _changed(con, stale, fresh)
            summary.changed = len(changed_keys)
            missing = _unclassified(con)
            summary.added = missing.num_rows
            if not changed_keys and not missing.num_rows and not summary.reclassified:
                return summary
            summary.calls_changed = _calls_with(con, changed_keys)
            _rewrite(con, tx, current, fresh, classified(missing, classifier))
        finally:
            con.close()
    log.info("re-classified %d of %d classes: %d changed (%d calls), %d added",
             summary.reclassified, summary.classes, summary.changed, summary.calls_changed,
             summary.added)
    return summary


def _refresh_narratives(store: AnalyticStore, summary: ApplySummary) -> None:
    """Recompute the narrative flags of call files written under other flag rules.

    A file whose flags all stay the same only has its manifest entry brought up to date; one
    where a call's flags change is rewritten, row order kept, with the new flags.
    """
    version = narrative_rules_version()
    with store.transaction() as tx:
        stale = [e for e in tx.base.files("calls") if "narrative" in e.get("columns", [])
                 and e.get("narrative_rules") != version]
        if not stale:
            return
        con = store.engine(writer=True)
        try:
            for entry in stale:
                summary.narrative_calls_changed += _refresh_file(con, tx, entry, version)
        finally:
            con.close()
        summary.narrative_files = len(stale)
    log.info("narrative flags checked in %d call files: %d calls changed",
             summary.narrative_files, summary.narrative_calls_changed)


def _refresh_file(con: duckdb.DuckDBPyConnection, tx: Transaction, entry: dict[str, Any],
                  version: str) -> int:
    path = lit(str(tx.store.root / entry["path"]))
    flags = narrative_flags_sql("narrative")
    changed = int(scalar(con, f"SELECT count(*) FROM read_parquet({path}) "
                              f"WHERE narrative_flags IS DISTINCT FROM {flags}"))
    if not changed:
        tx.annotate("calls", entry["path"], narrative_rules=version)
        return 0
    new = tx.staged_path("calls", "-narratives")
    run(con, f"COPY (SELECT * REPLACE ({flags} AS narrative_flags) FROM read_parquet({path})) "
             f"TO {lit(str(new))} ({_PARQUET})")
    tx.remove("calls", entry["path"])
    tx.add("calls", new, **{**{k: v for k, v in entry.items() if k != "path"},
                            "narrative_rules": version})
    return changed


def _changed(con: duckdb.DuckDBPyConnection, before: pa.Table, after: pa.Table) -> list[int]:
    """Class keys whose category, flags or deciding layer differ between two classifications."""
    if after.num_rows == 0:
        return []
    con.register("before_t", before)
    con.register("after_t", after)
    rows = run(con, """
        SELECT a.class_key FROM after_t a JOIN before_t b USING (class_key)
        WHERE a.category IS DISTINCT FROM b.category OR a.flags IS DISTINCT FROM b.flags
           OR a.decided_by IS DISTINCT FROM b.decided_by""")
    con.unregister("before_t")
    con.unregister("after_t")
    return [int(r[0]) for r in rows]


def _unclassified(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """Classes of stored calls that call_classes does not hold (calls stored before it)."""
    return con.sql(f"""SELECT * FROM ({distinct_keys_sql('calls')})
                       WHERE class_key NOT IN (SELECT class_key FROM call_classes)
                       ORDER BY class_key""").to_arrow_table()


def _calls_with(con: duckdb.DuckDBPyConnection, keys: list[int]) -> int:
    if not keys:
        return 0
    con.register("changed_keys", pa.table({"k": pa.array(keys, pa.uint64())}))
    n = int(scalar(con, "SELECT count(*) FROM calls WHERE class_key IN "
                        "(SELECT k FROM changed_keys)"))
    con.unregister("changed_keys")
    return n


def _rewrite(con: duckdb.DuckDBPyConnection, tx: Transaction, current: pa.Table,
             fresh: pa.Table, added: pa.Table) -> None:
    """Replace every call_classes file by one holding the current classes."""
    kept = current.filter(pc.invert(pc.is_in(current.column("class_key"),
                                             fresh.column("class_key"))))
    for entry in tx.base.files("call_classes"):
        tx.remove("call_classes", entry["path"])
    write_classes(con, tx, kept, fresh, added)


REVIEW_COLUMNS: tuple[str, ...] = (
    "source", "call_type", "initial_call_type", "final_call_type", "disposition_raw",
    "priority_raw", "category", "flags", "confidence", "decided_by", "unknown_reason", "calls",
)
"""Columns of the review list, in order."""


def review_list(store: AnalyticStore, *, source: str | None = None, limit: int | None = 50,
                include_all: bool = False) -> pa.Table:
    """Call classes an analyst should look at, the most frequent first.

    By default only classes the classifier marked for review (low confidence or unknown);
    ``include_all`` lists every class. ``calls`` is how many stored calls each class covers.
    ``limit`` caps the list (None or 0: every class).
    """
    where = ["true" if include_all else "k.review"]
    if source is not None:
        where.append(f"k.source = {lit(source)}")
    con = store.connect()
    try:
        return con.sql(f"""
            SELECT k.source, coalesce(k.final_call_type, k.initial_call_type) AS call_type,
                   k.initial_call_type, k.final_call_type, k.disposition_raw, k.priority_raw,
                   k.category, k.flags, k.confidence, k.decided_by, k.unknown_reason,
                   n.calls
            FROM call_classes k
            JOIN (SELECT class_key, count(*) AS calls FROM calls GROUP BY class_key) n
              USING (class_key)
            WHERE {' AND '.join(where)}
            ORDER BY n.calls DESC, k.source, call_type
            {f"LIMIT {int(limit)}" if limit else ""}""").to_arrow_table()
    finally:
        con.close()
