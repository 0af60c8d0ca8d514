"""Reasons a row is quarantined and problems a field can be flagged with (DATA_POLICY.md)."""

from __future__ import annotations

from enum import StrEnum


class QuarantineReason(StrEnum):
    """Why a whole row could not become a call (it is kept, whole, in the quarantine)."""

    NO_USABLE_TIME = "no_usable_time"
    NO_CALL_TYPE = "no_call_type"
    NO_RECORD_ID = "no_record_id"
    MISSING_COLUMNS = "missing_columns"
    TOO_MANY_COLUMNS = "too_many_columns"
    UNBALANCED_QUOTE = "unbalanced_quote"
    INVALID_ENCODING = "invalid_encoding"
    LINE_TOO_LONG = "line_too_long"
    MALFORMED_RECORD = "malformed_record"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"


class Problem(StrEnum):
    """What was wrong with one field of a stored call (the row keeps a flag ``field:problem``)."""

    UNPARSEABLE = "unparseable"
    IMPOSSIBLE_DATE = "impossible_date"
    NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"
    AMBIGUOUS_LOCAL_TIME = "ambiguous_local_time"
    OUT_OF_ORDER = "out_of_order"
    PLACEHOLDER = "placeholder"
    OUT_OF_BOUNDS = "out_of_bounds"
    TRUNCATED = "truncated"
    UNMAPPED_VALUE = "unmapped_value"


QUARANTINE_DESCRIPTIONS: dict[QuarantineReason, str] = {
    QuarantineReason.NO_USABLE_TIME: "none of the call's timestamps could be read or is possible",
    QuarantineReason.NO_CALL_TYPE: "no initial or final call type",
    QuarantineReason.NO_RECORD_ID: "the record id (or every natural-key column) is empty",
    QuarantineReason.MISSING_COLUMNS: "the row has fewer fields than the header",
    QuarantineReason.TOO_MANY_COLUMNS: "the row has more fields than the header",
    QuarantineReason.UNBALANCED_QUOTE: "a quoted field is never closed or is followed by text",
    QuarantineReason.INVALID_ENCODING: "bytes that are not valid in the file's encoding",
    QuarantineReason.LINE_TOO_LONG: "the record is longer than ingest_max_line_bytes",
    QuarantineReason.MALFORMED_RECORD: "the record cannot be parsed (e.g. invalid JSON)",
    QuarantineReason.CONFLICTING_DUPLICATE: (
        "another row of the same export has the same record id but different content; "
        "the last such row was stored"
    ),
}

PROBLEM_DESCRIPTIONS: dict[Problem, str] = {
    Problem.UNPARSEABLE: "the value does not match the declared format",
    Problem.IMPOSSIBLE_DATE: "before ingest_min_date or after the ingest (plus ingest_future_days)",
    Problem.NONEXISTENT_LOCAL_TIME: "local time skipped by a daylight-saving change; moved forward",
    Problem.AMBIGUOUS_LOCAL_TIME: "local time that occurs twice; the first occurrence was taken",
    Problem.OUT_OF_ORDER: "earlier than a timestamp that must precede it",
    Problem.PLACEHOLDER: "a value the source uses for 'not recorded'",
    Problem.OUT_OF_BOUNDS: "coordinates outside the source's declared bounding area",
    Problem.TRUNCATED: "longer than the field allows; cut, the whole value kept in call_quality",
    Problem.UNMAPPED_VALUE: "a value the mapping's value map does not know",
}
