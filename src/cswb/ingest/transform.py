"""The SQL that turns a landing's VARCHAR columns into canonical calls, set-based.

:class:`CallSql` builds one query from a mapping. Its stages (CTEs) are:

1. ``v``  - every canonical field's raw text (trimmed, joined, placeholders detected);
2. ``p``  - timestamps parsed, checked against possible dates, coordinates parsed;
3. ``z``  - local times joined to the zone's day table and converted to UTC;
4. ``o``  - order checks (a later timestamp before an earlier one is nulled and flagged);
5. ``c``  - the canonical columns, the data-quality list ``_dq``, the quarantine ``_reason``.

Rows are never dropped here: every row leaves with a ``_route`` (stored, quarantine, or resolve
when its id repeats or is already stored), and rows that are not stored carry ``_raw``, their
source columns (less identifying ones) as a map, so the quarantine keeps them whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cswb.domain.calls import CALL_FIELDS, FIELD_BY_NAME
from cswb.domain.quality import Problem, QuarantineReason
from cswb.domain.vocab import TIMESTAMP_FIELDS, Precision
from cswb.errors import MappingError
from cswb.ingest.locations import clean_location_sql, generalise_sql
from cswb.ingest.mapping import Mapping, TimeSpec, coarsest
from cswb.ingest.timezones import join_sql, utc_sql, window_sql
from cswb.ingest.valuemaps import value_map_sql

ABSOLUTE_FORMATS = {"epoch_ms", "epoch_s", "iso_offset"}
SPECIAL_FORMATS = {"iso", "excel", *ABSOLUTE_FORMATS}
_TRUNC = {Precision.SECOND: None, Precision.MINUTE: "minute", Precision.HOUR: "hour",
          Precision.DAY: "day"}
_GLOBAL_NULLS = ("NULL", "N/A", "NA", "NONE", "#N/A", "-")
_PREV = {"dispatched_at": ("received_at",), "arrived_at": ("received_at", "dispatched_at"),
         "cleared_at": ("received_at", "dispatched_at", "arrived_at")}


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A SQL quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Context:
    """What the query needs besides the mapping."""

    source_columns: list[str]
    batch_id: str
    file_sha256: str
    min_time: datetime
    max_time: datetime
    tz_table: str = "tz_days"


class CallSql:
    """SQL for one mapping applied to one landing."""

    def __init__(self, mapping: Mapping, ctx: Context) -> None:
        self.m = mapping
        self.ctx = ctx
        missing = [c for c in mapping.used_columns() if c not in ctx.source_columns]
        if missing:
            raise MappingError(_missing_message(mapping.name, missing, ctx.source_columns))
        for name, spec in mapping.timestamps.items():
            _check_formats(name, spec)

    # -- building blocks -------------------------------------------------------------------

    def text(self, column: str, field: str | None = None) -> str:
        """Trimmed text of a source column; empty and common null tokens become NULL."""
        nulls = ", ".join(lit(v) for v in _GLOBAL_NULLS)
        col = ident(column)
        return f"CASE WHEN upper(trim({col})) IN ({nulls}, '') THEN NULL ELSE trim({col}) END"

    def time_text(self, spec: TimeSpec) -> str:
        """Raw text of a timestamp: one column, or several joined by a space (null if any is)."""
        parts = [self.text(c) for c in spec.source_columns]
        return parts[0] if len(parts) == 1 else f"({' || chr(32) || '.join(parts)})"

    def field_text(self, field: str) -> str | None:
        spec = self.m.column_spec(field)
        if spec is None:
            return None
        parts = [self.text(c) for c in spec.source_columns]
        if len(parts) == 1:
            return parts[0]
        return f"nullif(concat_ws({lit(spec.join)}, {', '.join(parts)}), '')"

    def placeholder(self, field: str, expr: str) -> str | None:
        specs = [s for key in (field, "*") if (s := self.m.placeholders.get(key))]
        conds = []
        for spec in specs:
            if spec.values:
                values = ", ".join(lit(v.strip().upper()) for v in spec.values)
                conds.append(f"upper({expr}) IN ({values})")
            conds.extend(f"regexp_matches({expr}, {lit(p)})" for p in spec.patterns)
        return " OR ".join(conds) if conds else None

    def record_id(self) -> str:
        if self.m.record_id:
            return self.text(self.m.record_id)
        cols = self.m.natural_key or []
        joined = " || chr(31) || ".join(f"coalesce(trim({ident(c)}), '')" for c in cols)
        all_empty = " AND ".join(f"{self.text(c)} IS NULL" for c in cols)
        return f"CASE WHEN {all_empty} THEN NULL ELSE 'nk:' || md5({joined}) END"

    # -- stages ----------------------------------------------------------------------------

    def stage_values(self, source: str) -> str:
        cols = ["*", f"{self.record_id()} AS _rid"]
        for name in TIMESTAMP_FIELDS:
            spec = self.m.timestamps.get(name)
            cols.append(f"{self.time_text(spec) if spec else 'NULL::VARCHAR'} AS {name}__raw")
        for name in ("initial_call_type", "final_call_type", "priority_raw", "disposition_raw",
                     "origin_raw", "latitude", "longitude", "district", "sector", "beat",
                     "neighbourhood", "narrative"):
            expr = self.field_text(name)
            cols.append(f"{expr or 'NULL::VARCHAR'} AS {name}__raw")
        loc = self.field_text("location")
        cleaned = clean_location_sql(loc, self.m.location.strip) if loc else "NULL::VARCHAR"
        cols.append(f"{cleaned} AS location__clean")
        return f"SELECT {', '.join(cols)} FROM {source}"

    def stage_parse(self) -> str:
        cols = ["*"]
        for name in TIMESTAMP_FIELDS:
            raw = f"{name}__raw"
            ph = self.placeholder(name, raw)
            cols.append(f"{('(' + ph + ')') if ph else 'false'} AS {name}__ph")
            spec = self.m.timestamps.get(name)
            parsed = parse_sql(spec, raw) if spec else "NULL::TIMESTAMP"
            cols.append(f"CASE WHEN {('(' + ph + ')') if ph else 'false'} THEN NULL "
                        f"ELSE {parsed} END AS {name}__parsed")
        for name in ("latitude", "longitude"):
            cols.append(f"TRY_CAST({name}__raw AS DOUBLE) AS {name}__num")
        return f"SELECT {', '.join(cols)} FROM v"

    def stage_zone(self) -> str:
        lo, hi = lit(self.ctx.min_time.isoformat(" ")), lit(self.ctx.max_time.isoformat(" "))
        cols = ["p.*"]
        joins = []
        for i, name in enumerate(TIMESTAMP_FIELDS):
            spec = self.m.timestamps.get(name)
            parsed = f"p.{name}__parsed"
            ok = f"({parsed} >= TIMESTAMP {lo} AND {parsed} <= TIMESTAMP {hi})"
            cols.append(f"({parsed} IS NOT NULL AND NOT {ok}) AS {name}__impossible")
            if spec is None or set(spec.formats) & ABSOLUTE_FORMATS:
                cols.append(f"CASE WHEN {ok} THEN CAST({parsed} AS TIMESTAMPTZ) END AS {name}__utc")
                cols.append(f"CASE WHEN {ok} THEN {parsed} + to_seconds(0) END AS {name}__local")
                cols.append(f"NULL::VARCHAR AS {name}__dst")
                continue
            z = f"z{i}"
            joins.append(join_sql(parsed, z, self.ctx.tz_table))
            cols.append(f"CASE WHEN {ok} THEN {utc_sql(parsed, z)} END AS {name}__utc")
            cols.append(f"CASE WHEN {ok} THEN {parsed} END AS {name}__local")
            cols.append(f"CASE WHEN {ok} THEN {window_sql(parsed, z)} END AS {name}__dst")
        return f"SELECT {', '.join(cols)} FROM p {' '.join(joins)}"

    def stage_order(self) -> str:
        """Null (and flag) a timestamp earlier than one that must precede it.

        Each field's ``__ok`` value depends on the ones before it, so they nest one per field.
        Comparisons are made at the coarsest precision the mapping declares.
        """
        unit = _TRUNC[self.coarsest_precision()]
        first = TIMESTAMP_FIELDS[0]
        sql = f"SELECT *, false AS {first}__order, {first}__utc AS {first}__ok FROM z"
        for name in TIMESTAMP_FIELDS[1:]:
            prevs = [f"{p}__ok" for p in _PREV[name] if p in self.m.timestamps]
            utc = f"{name}__utc"
            check = "false"
            if prevs and name in self.m.timestamps:
                latest = prevs[0] if len(prevs) == 1 else f"greatest({', '.join(prevs)})"
                a, b = (utc, latest) if unit is None else (
                    f"date_trunc('{unit}', {utc})", f"date_trunc('{unit}', {latest})")
                check = f"coalesce({a} < {b}, false)"
            sql = (f"SELECT *, {check} AS {name}__order, CASE WHEN {check} THEN NULL ELSE {utc} "
                   f"END AS {name}__ok FROM ({sql})")
        return sql

    def coarsest_precision(self) -> Precision:
        return coarsest(spec.resolved_precision for spec in self.m.timestamps.values())

    def stage_canonical(self) -> str:
        m, ctx = self.m, self.ctx
        cols = [
            "_row", "_text", "_reason",
            "CASE WHEN _reason IS NOT NULL THEN 'quarantine' WHEN _resolve THEN 'resolve' "
            "ELSE 'stored' END AS _route",
            f"CASE WHEN _reason IS NOT NULL OR _resolve THEN {self.raw_map()} END AS _raw",
            "_rid AS source_record_id",
            f"{lit(m.name)} AS source",
            f"{lit(m.agency)} AS agency",
            f"{lit(ctx.batch_id)} AS batch_id",
            f"{lit(ctx.file_sha256)} AS file_sha256",
            "_row AS source_row",
        ]
        for name in TIMESTAMP_FIELDS:
            cols.append(f"{name}__ok AS {name}")
        for name in TIMESTAMP_FIELDS:
            spec = m.timestamps.get(name)
            prec = lit(spec.resolved_precision.value) if spec else "NULL::VARCHAR"
            cols.append(f"CASE WHEN {name}__ok IS NOT NULL THEN {prec} END AS "
                        f"{name.removesuffix('_at')}_precision")
        cols.extend(self._call_at_columns())
        cols.extend(self._type_columns())
        cols.extend(self._place_columns())
        cols.append(self._attributes())
        cols.append("_dq")
        cols.append("list_transform(_dq, lambda x: x.field || ':' || x.problem) AS dq_flags")
        for f in CALL_FIELDS:
            if f.group.startswith("classification"):
                cols.append(f"NULL::{f.sql_type} AS {f.name}")
        return f"SELECT {', '.join(cols)} FROM c"

    def _call_at_helpers_sql(self) -> str:
        """``_call_at`` (first valid timestamp), its ``_basis``, ``_local`` time, ``_precision``."""
        order = [n for n in TIMESTAMP_FIELDS if n in self.m.timestamps]
        oks = ", ".join(f"{n}__ok" for n in order)
        basis = " ".join(f"WHEN {n}__ok IS NOT NULL THEN {lit(n.removesuffix('_at'))}"
                         for n in order)
        local = " ".join(f"WHEN {n}__ok IS NOT NULL THEN {n}__local" for n in order)
        precision = " ".join(
            f"WHEN {n}__ok IS NOT NULL THEN "
            f"{lit(self.m.timestamps[n].resolved_precision.value)}" for n in order)
        return (f"coalesce({oks}) AS _call_at, CASE {basis} END AS _basis, "
                f"CASE {local} END AS _local, CASE {precision} END AS _precision")

    def _call_at_columns(self) -> list[str]:
        hour = "CAST(hour(_local) AS TINYINT)"
        return [
            "_call_at AS call_at", "_basis AS call_at_basis", "_precision AS call_at_precision",
            f"{lit(self.m.time_zone)} AS time_zone", "CAST(_local AS DATE) AS local_date",
            f"CASE WHEN _precision = 'day' THEN NULL ELSE {hour} END AS local_hour",
        ]

    def _type_columns(self) -> list[str]:
        cols = []
        for name in ("initial_call_type", "final_call_type", "priority_raw", "disposition_raw",
                     "origin_raw"):
            cols.append(f"{_truncated(name, f'{name}__raw')} AS {name}")
        cols.append(f"{_truncated('call_type', self._call_type_choice())} AS call_type")
        for name, raw in (("priority", "priority_raw__raw"),
                          ("disposition_group", "disposition_raw__raw"),
                          ("origin", "origin_raw__raw")):
            cols.append(f"{self._mapped(name, raw)[0]} AS {name}")
        cols.append(f"{_truncated('narrative', 'narrative__raw')} AS narrative")
        return cols

    def _mapped(self, name: str, default_source: str) -> tuple[str, str | None]:
        """SQL of a mapped value and the condition under which it is unmapped (to flag)."""
        vmap = self.m.value_maps.get(name)
        source = default_source
        if vmap and vmap.source:
            source = (f"{vmap.source}__raw" if vmap.source in _RAW_FIELDS
                      else self.text(vmap.source))
        expr, may_miss = value_map_sql(name, source, vmap)
        if name == "priority":
            expr = f"CAST({expr} AS TINYINT)"
            flag = f"({source} IS NOT NULL AND ({expr}) IS NULL)" if vmap else None
            return expr, flag
        flag = f"({source} IS NOT NULL AND ({expr}) IS NULL)" if may_miss else None
        return f"coalesce({expr}, 'unknown')", flag

    def _place_columns(self) -> list[str]:
        cols = [f"{_truncated('location', generalise_sql('location__clean', self.m.location.keep_exact))} AS location"]  # noqa: E501
        valid = self._coordinates_valid()
        for name in ("latitude", "longitude"):
            cols.append(f"CASE WHEN {valid} THEN round({name}__num, 3) END AS {name}")
        for name in ("district", "sector", "beat", "neighbourhood"):
            cols.append(f"{_truncated(name, f'{name}__raw')} AS {name}")
        return cols

    def _coordinates_valid(self) -> str:
        b = self.m.bounds
        base = ("latitude__num BETWEEN -90 AND 90 AND longitude__num BETWEEN -180 AND 180 "
                "AND NOT (latitude__num = 0 AND longitude__num = 0)")
        if b:
            base += (f" AND latitude__num BETWEEN {b.min_latitude} AND {b.max_latitude} "
                     f"AND longitude__num BETWEEN {b.min_longitude} AND {b.max_longitude}")
        return f"coalesce({base}, false)"

    def _attributes(self) -> str:
        if not self.m.attributes:
            return "NULL::MAP(VARCHAR, VARCHAR) AS attributes"
        keys = ", ".join(lit(a) for a in self.m.attributes)
        values = ", ".join(self.text(a) for a in self.m.attributes)
        return f"MAP([{keys}], [{values}]) AS attributes"

    def _dq_entries(self) -> list[tuple[str, str, str, str]]:
        """(condition, field, problem, original value SQL) for every field-level check."""
        e: list[tuple[str, str, str, str]] = []
        for name in TIMESTAMP_FIELDS:
            if name not in self.m.timestamps:
                continue
            raw = f"{name}__raw"
            e.append((f"{name}__ph", name, Problem.PLACEHOLDER, raw))
            e.append((f"({raw} IS NOT NULL AND NOT {name}__ph AND {name}__parsed IS NULL)",
                      name, Problem.UNPARSEABLE, raw))
            e.append((f"{name}__impossible", name, Problem.IMPOSSIBLE_DATE, raw))
            e.append((f"({name}__dst = 'nonexistent_local_time')", name,
                      Problem.NONEXISTENT_LOCAL_TIME, raw))
            e.append((f"({name}__dst = 'ambiguous_local_time')", name,
                      Problem.AMBIGUOUS_LOCAL_TIME, raw))
            e.append((f"{name}__order", name, Problem.OUT_OF_ORDER, raw))
        for name in ("latitude", "longitude"):
            raw, num = f"{name}__raw", f"{name}__num"
            rounded = f"coalesce(CAST(round({num}, 3) AS VARCHAR), {raw})"
            e.append((f"({raw} IS NOT NULL AND {num} IS NULL)", name, Problem.UNPARSEABLE, raw))
            e.append((f"({num} IS NOT NULL AND latitude__num IS NOT NULL AND longitude__num IS NOT "
                      f"NULL AND NOT {self._coordinates_valid()})", name, Problem.OUT_OF_BOUNDS,
                      rounded))
        for name in ("priority", "disposition_group", "origin"):
            raw = {"priority": "priority_raw__raw", "disposition_group": "disposition_raw__raw",
                   "origin": "origin_raw__raw"}[name]
            flag = self._mapped(name, raw)[1]
            if flag:
                e.append((flag, name, Problem.UNMAPPED_VALUE, raw))
        for name, raw in _TRUNCATABLE.items():
            if self.m.column_spec(name) is None:
                continue
            source = (generalise_sql(raw, self.m.location.keep_exact) if name == "location"
                      else raw)
            limit = FIELD_BY_NAME[name].max_chars
            e.append((f"(length({source}) > {limit})", name, Problem.TRUNCATED, source))
        return e

    def _dq_list(self) -> str:
        entries = self._dq_entries()
        if not entries:
            return "NULL::STRUCT(field VARCHAR, problem VARCHAR, original VARCHAR)[]"
        any_flag = " OR ".join(f"coalesce({c}, false)" for c, *_ in entries)
        items = ", ".join(
            f"CASE WHEN coalesce({c}, false) THEN {{'field': {lit(f)}, 'problem': {lit(p)}, "
            f"'original': CAST({o} AS VARCHAR)}} END"
            for c, f, p, o in entries
        )
        return f"CASE WHEN {any_flag} THEN list_filter([{items}], lambda x: x IS NOT NULL) END"

    def reason_sql(self) -> str:
        """SQL of a row's quarantine reason (NULL when it can be stored), over stage ``o``."""
        return (
            f"CASE WHEN _fault IS NOT NULL THEN _fault "
            f"WHEN _rid IS NULL THEN {lit(QuarantineReason.NO_RECORD_ID)} "
            f"WHEN _call_at IS NULL THEN {lit(QuarantineReason.NO_USABLE_TIME)} "
            f"WHEN {self._call_type_choice()} IS NULL THEN {lit(QuarantineReason.NO_CALL_TYPE)} END"
        )

    def _call_type_choice(self) -> str:
        return {
            "final_or_initial": "coalesce(final_call_type__raw, initial_call_type__raw)",
            "initial": "coalesce(initial_call_type__raw, final_call_type__raw)",
            "final": "final_call_type__raw",
        }[self.m.call_type_field]

    def raw_map(self) -> str:
        """SQL of a row's source columns as a map: identifying ones out, location generalised."""
        hidden = set(self.m.identifying.all)
        loc_spec = self.m.column_spec("location")
        loc_cols = set(loc_spec.source_columns) if loc_spec else set()
        coord_cols = {c for n in ("latitude", "longitude")
                      if (s := self.m.column_spec(n)) for c in s.source_columns}
        keys, values = [], []
        for col in self.ctx.source_columns:
            if col in hidden:
                continue
            value = f"CAST({ident(col)} AS VARCHAR)"
            if col in loc_cols and not self.m.location.keep_exact:
                value = generalise_sql(clean_location_sql(ident(col), self.m.location.strip))
            elif col in coord_cols:
                value = f"coalesce(CAST(round(TRY_CAST({ident(col)} AS DOUBLE), 3) AS VARCHAR), " \
                        f"{ident(col)})"
            keys.append(lit(col))
            values.append(value)
        return f"MAP([{', '.join(keys)}], [{', '.join(values)}])"

    def query(self, source: str, resolve_ids: str | None = None) -> str:
        """The whole query: canonical columns plus ``_route``, ``_reason``, ``_raw``, ``_dq``.

        ``resolve_ids`` names a table of ids (column ``rid``) that repeat in this file or are
        already stored; their rows are routed to ``resolve`` and compared after the scan.
        """
        canonical = ", ".join(f.name for f in CALL_FIELDS if f.name != "call_id")
        resolve = f"_rid IN (SELECT rid FROM {resolve_ids})" if resolve_ids else "false"
        return f"""
WITH v AS ({self.stage_values(source)}),
p AS ({self.stage_parse()}),
z AS ({self.stage_zone()}),
o AS (SELECT *, {self._call_at_helpers_sql()} FROM ({self.stage_order()})),
c AS (SELECT *, {self.reason_sql()} AS _reason, {resolve} AS _resolve,
      {self._dq_list()} AS _dq FROM o),
d AS ({self.stage_canonical()})
SELECT {canonical}, _dq, _reason, _text, _route, _raw FROM d
"""


_RAW_FIELDS = {"initial_call_type", "final_call_type", "priority_raw", "disposition_raw",
               "origin_raw", "latitude", "longitude", "district", "sector", "beat",
               "neighbourhood", "narrative"}

_TRUNCATABLE = {
    "initial_call_type": "initial_call_type__raw", "final_call_type": "final_call_type__raw",
    "priority_raw": "priority_raw__raw", "disposition_raw": "disposition_raw__raw",
    "origin_raw": "origin_raw__raw", "location": "location__clean",
    "district": "district__raw", "sector": "sector__raw", "beat": "beat__raw",
    "neighbourhood": "neighbourhood__raw", "narrative": "narrative__raw",
}


def _truncated(name: str, expr: str) -> str:
    limit = FIELD_BY_NAME[name].max_chars
    return f"left({expr}, {limit})" if limit else expr


def parse_sql(spec: TimeSpec, raw: str) -> str:
    """SQL parsing a raw timestamp string with the spec's formats into a naive TIMESTAMP."""
    strp = [f for f in spec.formats if f not in SPECIAL_FORMATS]
    parts = []
    if strp:
        formats = "[" + ", ".join(lit(f) for f in strp) + "]"
        parts.append(f"try_strptime({raw}, {formats})")
    for fmt in spec.formats:
        if fmt == "iso":
            parts.append(f"TRY_CAST({raw} AS TIMESTAMP)")
        elif fmt == "iso_offset":
            parts.append(f"CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AS TIMESTAMP)")
        elif fmt == "epoch_ms":
            parts.append(f"CAST(make_timestamp(CAST(TRY_CAST({raw} AS DOUBLE) * 1000 AS BIGINT)) "
                         "AS TIMESTAMP)")
        elif fmt == "epoch_s":
            parts.append(f"CAST(make_timestamp(CAST(TRY_CAST({raw} AS DOUBLE) * 1000000 AS BIGINT))"
                         " AS TIMESTAMP)")
        elif fmt == "excel":
            parts.append(f"TIMESTAMP '1899-12-30' + to_microseconds(CAST(round(TRY_CAST({raw} AS "
                         "DOUBLE) * 86400000000) AS BIGINT))")
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


def _check_formats(name: str, spec: TimeSpec) -> None:
    absolute = set(spec.formats) & ABSOLUTE_FORMATS
    if absolute and len(absolute) != len(spec.formats):
        raise MappingError(
            f"timestamps.{name}: {sorted(absolute)} carry their own offset and cannot be mixed "
            "with local-time formats"
        )


def _missing_message(source: str, missing: list[str], header: list[str]) -> str:
    shown = ", ".join(repr(h) for h in header[:12]) + (" ..." if len(header) > 12 else "")
    msg = (f"mapping {source!r} reads columns the file does not have: "
           f"{', '.join(repr(c) for c in missing)}. The file's columns are: {shown}.")
    if len(header) == 1:
        for delim in (";", "\t", "|", ","):
            if delim in header[0]:
                msg += (f" The header looks delimited by {delim!r}: set file.delimiter "
                        "(or 'auto') in the mapping.")
                break
    return msg
