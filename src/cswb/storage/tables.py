"""Schemas of the analytic store's tables other than calls (which lives in cswb.domain.calls)."""

from __future__ import annotations

from cswb.domain.calls import CALL_FIELDS

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "calls": tuple((f.name, f.sql_type) for f in CALL_FIELDS),
    "quarantine": (
        ("source", "VARCHAR"),
        ("batch_id", "VARCHAR"),
        ("source_row", "BIGINT"),
        ("reason", "VARCHAR"),
        ("detail", "VARCHAR"),
        ("record", "MAP(VARCHAR, VARCHAR)"),
        ("raw_text", "VARCHAR"),
    ),
    "call_quality": (
        ("call_id", "VARCHAR"),
        ("source", "VARCHAR"),
        ("batch_id", "VARCHAR"),
        ("source_row", "BIGINT"),
        ("field", "VARCHAR"),
        ("problem", "VARCHAR"),
        ("original", "VARCHAR"),
    ),
    "call_changes": (
        ("call_id", "VARCHAR"),
        ("source", "VARCHAR"),
        ("previous_batch_id", "VARCHAR"),
        ("batch_id", "VARCHAR"),
        ("changed_fields", "VARCHAR[]"),
        ("changed_at", "TIMESTAMPTZ"),
    ),
    "call_classes": (
        ("class_key", "UBIGINT"),
        ("source", "VARCHAR"),
        ("initial_call_type", "VARCHAR"),
        ("final_call_type", "VARCHAR"),
        ("disposition_raw", "VARCHAR"),
        ("priority_raw", "VARCHAR"),
        ("priority", "TINYINT"),
        ("category", "VARCHAR"),
        ("flags", "VARCHAR[]"),
        ("confidence", "DOUBLE"),
        ("decided_by", "VARCHAR"),
        ("taxonomy_version", "VARCHAR"),
        ("unknown_reason", "VARCHAR"),
        ("review", "BOOLEAN"),
        ("classifier_version", "VARCHAR"),
        ("classified_at", "TIMESTAMPTZ"),
    ),
    "batches": (
        ("batch_id", "VARCHAR"),
        ("source", "VARCHAR"),
        ("agency", "VARCHAR"),
        ("mapping_sha256", "VARCHAR"),
        ("file_name", "VARCHAR"),
        ("file_sha256", "VARCHAR"),
        ("file_bytes", "BIGINT"),
        ("file_format", "VARCHAR"),
        ("encoding", "VARCHAR"),
        ("delimiter", "VARCHAR"),
        ("started_at", "TIMESTAMPTZ"),
        ("finished_at", "TIMESTAMPTZ"),
        ("rows_read", "BIGINT"),
        ("rows_inserted", "BIGINT"),
        ("rows_updated", "BIGINT"),
        ("rows_unchanged", "BIGINT"),
        ("rows_duplicate", "BIGINT"),
        ("rows_quarantined", "BIGINT"),
        ("rows_flagged", "BIGINT"),
        ("cswb_version", "VARCHAR"),
    ),
}
"""Every table of the analytic store and its columns, in order."""


def empty_select(table: str) -> str:
    """A SELECT with the table's columns and no rows (the view of a table with no files)."""
    cols = ", ".join(f"CAST(NULL AS {sql_type}) AS {name}" for name, sql_type in TABLES[table])
    return f"SELECT {cols} WHERE false"


def column_list(table: str) -> str:
    """The table's column names, comma-separated, in schema order."""
    return ", ".join(name for name, _ in TABLES[table])
