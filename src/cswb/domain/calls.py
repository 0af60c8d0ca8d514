"""The canonical call record: one row per call for service, whatever its source.

The record is described once, here, as a table of :class:`CallField`; the analytic store's
schema, the ingest SQL and ``docs/call-record.md`` are all derived from this table, so they
cannot drift apart. See ``docs/call-record.md`` for the field-by-field reference.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallField:
    """One column of the canonical call record."""

    name: str
    sql_type: str
    group: str
    description: str
    max_chars: int | None = None


_ID = "identity and provenance"
_TIME = "time"
_TYPE = "call type, priority, disposition, origin"
_PLACE = "location"
_QUALITY = "data quality"
_CLASS = "classification (filled by cswb classify)"

CALL_FIELDS: tuple[CallField, ...] = (
    CallField("call_id", "VARCHAR", _ID, "Globally unique id: `<source>:<source_record_id>`."),
    CallField("source", "VARCHAR", _ID, "Name of the source mapping the call came through."),
    CallField(
        "source_record_id",
        "VARCHAR",
        _ID,
        "The source's own record id, or `nk:<md5>` of the natural-key columns when the source "
        "publishes no id.",
        200,
    ),
    CallField("agency", "VARCHAR", _ID, "Agency that took the call (from the mapping)."),
    CallField("batch_id", "VARCHAR", _ID, "Ingest batch that stored this version of the call."),
    CallField("file_sha256", "VARCHAR", _ID, "SHA-256 of the file the batch read."),
    CallField("source_row", "BIGINT", _ID, "1-based data row of the call in that file."),
    CallField("received_at", "TIMESTAMPTZ", _TIME, "When the call was received (UTC)."),
    CallField("dispatched_at", "TIMESTAMPTZ", _TIME, "When a unit was dispatched (UTC)."),
    CallField("arrived_at", "TIMESTAMPTZ", _TIME, "When the first unit arrived on scene (UTC)."),
    CallField("cleared_at", "TIMESTAMPTZ", _TIME, "When the call was cleared or closed (UTC)."),
    CallField("received_precision", "VARCHAR", _TIME, "second, minute, hour or day."),
    CallField("dispatched_precision", "VARCHAR", _TIME, "Precision of dispatched_at."),
    CallField("arrived_precision", "VARCHAR", _TIME, "Precision of arrived_at."),
    CallField("cleared_precision", "VARCHAR", _TIME, "Precision of cleared_at."),
    CallField(
        "call_at",
        "TIMESTAMPTZ",
        _TIME,
        "Reference time of the call: the first of received, dispatched, arrived, cleared.",
    ),
    CallField("call_at_basis", "VARCHAR", _TIME, "Which timestamp call_at was taken from."),
    CallField("call_at_precision", "VARCHAR", _TIME, "Precision of call_at."),
    CallField("time_zone", "VARCHAR", _TIME, "IANA zone of the source's local times."),
    CallField("local_date", "DATE", _TIME, "Local calendar date of call_at."),
    CallField(
        "local_hour",
        "TINYINT",
        _TIME,
        "Local hour (0-23) of call_at; null when the source gives only a date.",
    ),
    CallField("initial_call_type", "VARCHAR", _TYPE, "Call type as first recorded (raw).", 200),
    CallField("final_call_type", "VARCHAR", _TYPE, "Call type at close (raw).", 200),
    CallField(
        "call_type",
        "VARCHAR",
        _TYPE,
        "Call type used for classification: the final type when there is one, else the initial.",
        200,
    ),
    CallField("priority_raw", "VARCHAR", _TYPE, "Priority as the source gives it.", 100),
    CallField(
        "priority", "TINYINT", _TYPE, "Normalised priority 1 (emergency) to 4 (non-urgent)."
    ),
    CallField("disposition_raw", "VARCHAR", _TYPE, "Disposition as the source gives it.", 200),
    CallField("disposition_group", "VARCHAR", _TYPE, "Disposition group (see vocabularies)."),
    CallField("origin_raw", "VARCHAR", _TYPE, "How the call came in, as the source says.", 100),
    CallField(
        "origin", "VARCHAR", _TYPE, "911, phone, officer_initiated, other or unknown."
    ),
    CallField(
        "location",
        "VARCHAR",
        _PLACE,
        "Hundred block (`52XX N 35TH ST`) or intersection (`A / B`); never a house number.",
        200,
    ),
    CallField("latitude", "DOUBLE", _PLACE, "Latitude rounded to 3 decimals (about 100 m)."),
    CallField("longitude", "DOUBLE", _PLACE, "Longitude rounded to 3 decimals."),
    CallField("district", "VARCHAR", _PLACE, "District or precinct, as published.", 100),
    CallField("sector", "VARCHAR", _PLACE, "Sector or zone, as published.", 100),
    CallField("beat", "VARCHAR", _PLACE, "Beat, as published.", 100),
    CallField("neighbourhood", "VARCHAR", _PLACE, "Neighbourhood, as published.", 100),
    CallField(
        "narrative",
        "VARCHAR",
        _TYPE,
        "Free text about the call, only where a mapping keeps it (it may hold names).",
        32768,
    ),
    CallField(
        "narrative_flags",
        "VARCHAR[]",
        _TYPE,
        "Flags the classifier's flag rules find in the narrative, at ingest (added to flags).",
    ),
    CallField(
        "attributes",
        "MAP(VARCHAR, VARCHAR)",
        _TYPE,
        "Other non-identifying source columns the mapping keeps, by name.",
    ),
    CallField(
        "dq_flags",
        "VARCHAR[]",
        _QUALITY,
        "Data-quality flags `field:problem`; details and original values in call_quality.",
    ),
    CallField(
        "class_key",
        "UBIGINT",
        _CLASS,
        "Hash of the classification inputs (source, call types, disposition, raw priority): "
        "calls sharing it are classified once, in the call_classes table.",
    ),
    CallField("category", "VARCHAR", _CLASS, "Taxonomy category."),
    CallField(
        "flags",
        "VARCHAR[]",
        _CLASS,
        "Taxonomy flags: those of the call's class, plus officer_initiated from the origin.",
    ),
    CallField("confidence", "DOUBLE", _CLASS, "Confidence of the classification (0-1)."),
    CallField("decided_by", "VARCHAR", _CLASS, "override, rule:<id> or model:<name>@<version>."),
    CallField("taxonomy_version", "VARCHAR", _CLASS, "Version of the taxonomy applied."),
    CallField("unknown_reason", "VARCHAR", _CLASS, "Why the category is unknown, if it is."),
)

FIELD_BY_NAME: dict[str, CallField] = {f.name: f for f in CALL_FIELDS}

CONTENT_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in CALL_FIELDS
    if f.group not in (_CLASS,)
    and f.name not in {"batch_id", "file_sha256", "source_row", "narrative_flags"}
)
"""Fields whose change between two exports of the same record counts as an upstream change."""


def call_schema_sql() -> str:
    """Column list ``name TYPE, ...`` of the canonical call record."""
    return ", ".join(f"{f.name} {f.sql_type}" for f in CALL_FIELDS)


CLASS_KEY_FIELDS: tuple[str, ...] = (
    "source", "initial_call_type", "final_call_type", "disposition_raw", "priority_raw",
)
"""The fields a call's classification depends on (its class key)."""

CLASS_RESULT_FIELDS: tuple[str, ...] = tuple(
    f.name for f in CALL_FIELDS if f.group == _CLASS and f.name != "class_key"
)
"""Fields filled from the call_classes table when calls are read."""


def class_key_sql(values: dict[str, str]) -> str:
    """SQL of the class key from SQL expressions of :data:`CLASS_KEY_FIELDS` (NULL if absent).

    Ingest and the calls view must hash the same VARCHAR values the same way.
    """
    args = ", ".join(f"CAST({values.get(name, 'NULL')} AS VARCHAR)" for name in CLASS_KEY_FIELDS)
    return f"hash({args})"


DERIVED_FIELDS: dict[str, str] = {
    "call_id": "source || ':' || source_record_id",
    "call_at": "coalesce(received_at, dispatched_at, arrived_at, cleared_at)",
    "call_at_basis": (
        "CASE WHEN received_at IS NOT NULL THEN 'received' "
        "WHEN dispatched_at IS NOT NULL THEN 'dispatched' "
        "WHEN arrived_at IS NOT NULL THEN 'arrived' WHEN cleared_at IS NOT NULL THEN 'cleared' END"
    ),
    "call_at_precision": (
        "CASE WHEN received_at IS NOT NULL THEN received_precision "
        "WHEN dispatched_at IS NOT NULL THEN dispatched_precision "
        "WHEN arrived_at IS NOT NULL THEN arrived_precision "
        "WHEN cleared_at IS NOT NULL THEN cleared_precision END"
    ),
}
"""Fields computed when the calls are read rather than stored (cheap, and never inconsistent)."""


def calls_view_sql(present: set[str] | None, scan: str, implicit_rows: bool = False,
                   classes: str | None = None) -> str:
    """SQL of the canonical record over stored call files (``scan``) holding ``present`` columns.

    Stored files hold only the columns their source can fill; the others read as typed NULLs,
    and the derived fields are computed from the stored ones. A file whose rows are numbered
    implicitly (``implicit_rows``) gives each row's position as its source row. ``classes`` is
    SQL of the call_classes table: the classification fields come from it, by class key.
    """
    stored = {
        f.name: (f"CAST({f.name} AS {f.sql_type})" if present is None or f.name in present
                 else f"CAST(NULL AS {f.sql_type})")
        for f in CALL_FIELDS if f.name not in DERIVED_FIELDS and f.name not in CLASS_RESULT_FIELDS
    }
    if implicit_rows:
        position = "CAST(file_row_number + 1 AS BIGINT)"
        explicit = present is None or "source_row" in present
        stored["source_row"] = f"coalesce(source_row, {position})" if explicit else position
    # files written before class keys were stored get theirs computed the same way
    stored["class_key"] = (f"coalesce({stored['class_key']}, "
                           f"{class_key_sql({n: stored[n] for n in CLASS_KEY_FIELDS})})")
    inner = ", ".join(f"{expr} AS {name}" for name, expr in stored.items())
    outer = ", ".join(
        f"{DERIVED_FIELDS[f.name]} AS {f.name}" if f.name in DERIVED_FIELDS
        else _class_field_sql(f, classes is not None)
        for f in CALL_FIELDS
    )
    # files written by the mapping pass also hold the rows it did not store (quarantined or
    # repeated, with a _route): they are never calls
    where = " WHERE _route IS NULL" if present is None or "_route" in present else ""
    results = ", ".join(("class_key", *CLASS_RESULT_FIELDS, "list_sort(list_distinct("
                         "list_append(flags, 'officer_initiated'))) AS _flags_officer"))
    join = (f" LEFT JOIN (SELECT {results} FROM ({classes})) k ON c.class_key = k.class_key"
            if classes else "")
    return f"SELECT {outer} FROM (SELECT {inner} FROM {scan}{where}) c{join}"


def _class_field_sql(f: CallField, joined: bool) -> str:
    """One field of the outer calls view: from the call itself or from its class."""
    if f.name not in CLASS_RESULT_FIELDS:
        return f"c.{f.name}"
    if not joined:
        return f"CAST(NULL AS {f.sql_type}) AS {f.name}"
    if f.name == "flags":  # per call, a choice between two lists made per class ...
        chosen = ("CASE WHEN c.origin = 'officer_initiated' THEN k._flags_officer "
                  "ELSE k.flags END")
        # ... and, only for calls whose narrative showed flags, a merge
        return (f"CASE WHEN len(c.narrative_flags) > 0 THEN list_sort(list_distinct("
                f"list_concat(coalesce({chosen}, []), c.narrative_flags))) "
                f"ELSE {chosen} END AS flags")
    return f"k.{f.name}"
