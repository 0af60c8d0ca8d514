"""The SQL that turns a landing's VARCHAR columns into canonical calls, set-based.

:class:`CallSql` compiles a mapping into SQL. Work that depends only on a low-cardinality value
(value maps over priorities, dispositions and origins; generalising a location) is done once per
*distinct* value, in small lookup tables built from the id pass, and joined back; work that
depends on each row (timestamps, coordinates, ids) runs in the main query, whose stages are:

``t``  every source column the mapping reads, trimmed once;
``v``  each canonical field's raw text (null tokens and joined columns handled);
``j``  the lookups joined: mapped values and the generalised location;
``p``  timestamps parsed (placeholders first), coordinates parsed;
``z``  local times joined to the zone's day table and converted to UTC;
``o``  order checks (a later timestamp before an earlier one is nulled and flagged);
``c``  one problem code per field, the flags string, the quarantine reason;
``d``  the canonical columns.

Rows are never dropped here: a row to store leaves with a null ``_route``; others with
``quarantine``, or ``resolve`` when its id repeats or is already stored. What the later steps
need of the few rows that are not stored plainly, or are flagged, travels in one JSON column,
``_aside`` (see :data:`ASIDE`): the quarantine reason, each flagged field's original value,
the record the quarantine shows (source columns less identifying ones, the location
generalised, :meth:`CallSql.record_sql`) and a malformed row's scrubbed text: the store never
holds a row's fields as read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from cswb.classify.narrative import narrative_flags_sql
from cswb.domain.calls import FIELD_BY_NAME, class_key_sql
from cswb.domain.quality import Problem, QuarantineReason
from cswb.domain.vocab import TIMESTAMP_FIELDS, Precision
from cswb.errors import MappingError
from cswb.ingest.locations import clean_location_sql, generalise_sql
from cswb.ingest.mapping import TEXT_FIELDS, Mapping, TimeSpec, coarsest
from cswb.ingest.timezones import instant_sql, join_sql, utc_sql, window_sql
from cswb.ingest.valuemaps import value_map_sql

ABSOLUTE_FORMATS = {"epoch_ms", "epoch_s", "iso_offset"}
SPECIAL_FORMATS = {"iso", "excel", *ABSOLUTE_FORMATS}
_TRUNC = {Precision.SECOND: None, Precision.MINUTE: "minute", Precision.HOUR: "hour",
          Precision.DAY: "day"}
_GLOBAL_NULLS = ("NULL", "N/A", "NA", "NONE", "#N/A", "-")
_NULL_TOKENS = "(?i)^(" + "|".join(re.escape(v) for v in _GLOBAL_NULLS) + ")$"
"""A whole value that means "no value" (anchored, so ``regexp_replace`` can blank it too)."""
_PREV = {"dispatched_at": ("received_at",), "arrived_at": ("received_at", "dispatched_at"),
         "cleared_at": ("received_at", "dispatched_at", "arrived_at")}
RAW_TEXT_FIELDS = TEXT_FIELDS
"""Canonical fields read from source columns as text (every one gets a ``__raw`` column)."""
_MAP_RAW = {"priority": "priority_raw", "disposition_group": "disposition_raw",
            "origin": "origin_raw"}
_STORED_TEXT = ("initial_call_type", "final_call_type", "priority_raw", "disposition_raw",
                "origin_raw", "district", "sector", "beat", "neighbourhood", "narrative")
_CODE_TEXT = ("priority_raw", "disposition_raw", "origin_raw")
"""Stored text fields that a value map reads: stored from the code lookup, cut to length."""
CODE_DIM = "code_dim"
LOCATION_DIM = "location_dim"
ASIDE = {
    "_reason": "json_extract_string(_aside, '$.reason')",
    "_dq_orig": "CAST(json_extract(_aside, '$.dq_orig') AS MAP(VARCHAR, VARCHAR))",
    "_record": "CAST(json_extract(_aside, '$.record') AS MAP(VARCHAR, VARCHAR))",
    "_raw_text": "json_extract_string(_aside, '$.raw_text')",
}
"""SQL of the values the main query sets aside for the rows that need them, by name. One JSON
column, null for nearly every row, is written for a tenth of the cost of two maps and two
strings (the Parquet writer pays per value of every column, null or not)."""


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A SQL quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Check:
    """One field's data-quality check, as SQL over stage ``o`` (which rows it may fire on is
    :meth:`CallSql._flag_guard`'s business)."""

    code: str
    """The problem code(s) or NULL, built only for rows the flag guard selects."""
    original: str
    """The field's original value, kept with the flag."""


@dataclass(frozen=True)
class Context:
    """What the query needs besides the mapping."""

    source_columns: list[str]
    batch_id: str
    file_sha256: str
    min_time: datetime
    max_time: datetime
    tz_table: str = "tz_days"
    numbered: bool = True
    """Whether rows carry their source row (``_row``); else it is their position in the output."""


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
        self._trim_names = {c: f"__t{i}" for i, c in enumerate(mapping.used_columns())}

    # -- raw values ------------------------------------------------------------------------

    def text(self, column: str) -> str:
        """Text of a source column (stage ``n``): trimmed, empty and null tokens NULL."""
        return self._trim_names[column].replace("__t", "__n", 1)

    def _text_sql(self, column: str) -> str:
        """SQL of a source column's text (stage ``n``), in one ``CASE`` over the column as
        read: NULL in a malformed row; a value with spaces around it trimmed; empty values
        and null tokens NULL.

        One ``CASE`` per column, not a trim and then a null test: DuckDB pays for each
        ``CASE`` per row, whichever branch the row takes. The trim is written once, in the
        branch of the (few) values with spaces, so no common-subexpression pass can lift it
        out for every row. Null tokens are matched by a regular expression, not ``IN``:
        DuckDB plans an ``IN`` list as a join, one per column.
        """
        c = ident(column)
        longest = max(len(v) for v in _GLOBAL_NULLS)
        padded = f"nullif(regexp_replace(trim({c}), {lit(_NULL_TOKENS)}, ''), '')"
        return (f"CASE WHEN _fault IS NOT NULL THEN NULL "
                f"WHEN {c} LIKE ' %' OR {c} LIKE '% ' THEN {padded} "
                f"WHEN strlen({c}) > {longest} THEN {c} "
                f"WHEN {c} = '' OR regexp_full_match({c}, {lit(_NULL_TOKENS)}) THEN NULL "
                f"ELSE {c} END")

    def _time_text(self, spec: TimeSpec) -> str:
        parts = [self.text(c) for c in spec.source_columns]
        return parts[0] if len(parts) == 1 else f"({' || chr(32) || '.join(parts)})"

    def _field_text(self, field: str) -> str | None:
        spec = self.m.column_spec(field)
        if spec is None:
            return None
        parts = [self.text(c) for c in spec.source_columns]
        if len(parts) == 1:
            return parts[0]
        return f"nullif(concat_ws({lit(spec.join)}, {', '.join(parts)}), '')"

    def record_id(self) -> str:
        """SQL of the record id over stage ``t`` (the natural key's md5 when there is no id)."""
        if self.m.record_id:
            return self.text(self.m.record_id)
        cols = self.m.natural_key or []
        joined = " || chr(31) || ".join(f"coalesce({self._trim_names[c]}, '')" for c in cols)
        all_empty = " AND ".join(f"{self.text(c)} IS NULL" for c in cols)
        return f"CASE WHEN {all_empty} THEN NULL ELSE 'nk:' || md5({joined}) END"

    def _placeholder(self, field: str, expr: str) -> str | None:
        specs = [s for key in (field, "*") if (s := self.m.placeholders.get(key))]
        conds: list[str] = []
        for spec in specs:
            values = [v.strip() for v in spec.values]
            # values without letters need no case folding: a plain comparison is much cheaper
            conds.extend(f"{expr} = {lit(v)}" for v in values if v.lower() == v.upper())
            lettered = [v for v in values if v.lower() != v.upper()]
            if lettered:
                alternatives = "|".join(re.escape(v) for v in lettered)
                conds.append(f"regexp_full_match({expr}, {lit('(?i)(' + alternatives + ')')})")
            conds.extend(f"regexp_matches({expr}, {lit(p)})" for p in spec.patterns)
        return "(" + " OR ".join(conds) + ")" if conds else None

    def _map_source(self, name: str) -> str:
        """The stage-``v`` column a value map reads."""
        vmap = self.m.value_maps.get(name)
        if vmap and vmap.source:
            return f"{vmap.source}__raw" if vmap.source in RAW_TEXT_FIELDS else f"__map_{name}"
        return f"{_MAP_RAW[name]}__raw"

    def stage_trim(self, source: str) -> str:
        """Stages ``t`` (trimmed columns, read only by a natural key) and ``n`` (each column's
        text, :meth:`_text_sql`) over ``source``.

        Few values have spaces around them, and trimming copies the string: only those are.
        ``LIKE ' %'`` finds them for two thirds of the cost of ``starts_with``. A malformed
        row's fields are out of place (an address may sit under the latitude, a phone under
        the longitude), so none is read by name: its canonical values are NULL and only its
        scrubbed text is kept.
        """
        trims = ", ".join(
            f"CASE WHEN _fault IS NOT NULL THEN NULL "
            f"WHEN {ident(c)} LIKE ' %' OR {ident(c)} LIKE '% ' "
            f"THEN trim({ident(c)}) ELSE {ident(c)} END AS {t}"
            for c, t in self._trim_names.items())
        texts = ", ".join(f"{self._text_sql(c)} AS {self.text(c)}" for c in self._trim_names)
        return f"SELECT *, {texts} FROM (SELECT *, {trims} FROM {source})"

    def stage_values(self) -> str:
        cols = ["*", f"{self.record_id()} AS _rid"]
        for name in TIMESTAMP_FIELDS:
            spec = self.m.timestamps.get(name)
            cols.append(f"{self._time_text(spec) if spec else 'NULL::VARCHAR'} AS {name}__raw")
        for name in RAW_TEXT_FIELDS:
            text = self._field_text(name)
            ph = self._placeholder(name, text) if text else None
            if ph:  # a declared "not recorded" value: the field is null, the row flagged
                cols.append(f"CASE WHEN {ph} THEN NULL ELSE {text} END AS {name}__raw")
                cols.append(f"CASE WHEN {ph} THEN {text} END AS {name}__placeholder")
            else:
                cols.append(f"{text or 'NULL::VARCHAR'} AS {name}__raw")
        for name, vmap in self.m.value_maps.items():
            if vmap.source and vmap.source not in RAW_TEXT_FIELDS:
                cols.append(f"{self.text(vmap.source)} AS __map_{name}")
        return f"SELECT {', '.join(cols)} FROM t"

    # -- lookups built once per distinct value -------------------------------------------

    def code_keys(self) -> list[str]:
        """Stage-``v`` columns the value maps read (the key of the code lookup)."""
        return sorted({self._map_source(name) for name in _MAP_RAW if self._maps(name)})

    def _code_text(self) -> list[str]:
        """The :data:`_CODE_TEXT` fields the code lookup is keyed by (it stores them)."""
        keys = set(self.code_keys())
        return [n for n in _CODE_TEXT if self.m.column_spec(n) and f"{n}__raw" in keys]

    def code_text_columns(self) -> list[str]:
        """The code lookup's columns stored as text (the pipeline types them ``ENUM``)."""
        mapped = [f"_{n}" for n in ("disposition_group", "origin") if self._maps(n)]
        return [*(f"_s_{n}" for n in self._code_text()), *mapped]

    def _maps(self, name: str) -> bool:
        """Whether the mapping produces this mapped field at all."""
        if name == "priority":
            return "priority" in self.m.value_maps
        vmap = self.m.value_maps.get(name)
        return bool(vmap and vmap.source) or self.m.column_spec(_MAP_RAW[name]) is not None

    def has_location(self) -> bool:
        return self.m.column_spec("location") is not None

    def code_dim_sql(self, keys: str) -> str:
        """SQL of the code lookup from a relation ``keys`` of distinct key tuples: the mapped
        values, and the raw codes as stored (``_s_<field>``, cut to their length)."""
        cols = list(self.code_keys())
        for name in _MAP_RAW:
            if self._maps(name):
                expr, _ = value_map_sql(name, self._map_source(name), self.m.value_maps.get(name))
                cols.append(f"{expr} AS _{name}")
        cols.extend(f"{_truncated(n, f'{n}__raw')} AS _s_{n}" for n in self._code_text())
        return f"SELECT {', '.join(cols)} FROM {keys}"

    def location_dim_sql(self, keys: str) -> str:
        """SQL of the location lookup from a relation ``keys`` of distinct raw locations."""
        cleaned = clean_location_sql("location__raw", self.m.location.strip)
        general = generalise_sql("_clean", self.m.location.keep_exact)
        return (f"SELECT location__raw, {general} AS _location FROM "
                f"(SELECT location__raw, {cleaned} AS _clean FROM {keys})")

    def prepass_sql(self, source: str, touch: str, stored: str | None = None) -> str:
        """One scan: ids that may repeat, and the distinct keys of every lookup (grouping sets).

        Ids are grouped by their 64-bit hash (``_rh``), cheaper than by text at ten million
        rows; a hash kept because it repeats, or because it is in ``stored`` (a relation of
        hashes of ids already stored), sends its rows to the resolve step, which compares ids
        as text: a collision costs a comparison, never a wrong answer.
        """
        sets = ["(_rh)"]
        keys = self.code_keys()
        if keys:
            sets.append("(" + ", ".join(keys) + ")")
        if self.has_location():
            sets.append("(location__raw)")
        selected = ["_rh", *keys, *(["location__raw"] if self.has_location() else [])]
        kind = ("CASE WHEN GROUPING(_rh) = 0 THEN 'rid' "
                + ("WHEN GROUPING(location__raw) = 0 THEN 'location' " if self.has_location()
                   else "") + "ELSE 'code' END")
        known = f" OR _rh IN (SELECT h FROM {stored})" if stored else ""
        return (
            f"WITH t AS ({self.stage_trim(source)}), v AS ({self.stage_values()}) "
            f"SELECT {kind} AS _kind, {', '.join(selected)} FROM "
            f"(SELECT *, CASE WHEN _rid IS NOT NULL THEN hash(_rid) END AS _rh FROM v "
            f"WHERE _fault IS NULL AND {touch}) GROUP BY GROUPING SETS ({', '.join(sets)}) "
            f"HAVING GROUPING(_rh) = 1 OR (_rh IS NOT NULL AND (count(*) > 1{known}))"
        )

    def stage_join(self, code_dim: str | None, location_dim: str | None) -> str:
        cols, joins = ["v.*"], []
        if code_dim:
            on = " AND ".join(f"cd.{k} IS NOT DISTINCT FROM v.{k}" for k in self.code_keys())
            joins.append(f"LEFT JOIN {code_dim} cd ON {on}")
            cols.extend(f"cd._{n}" for n in _MAP_RAW if self._maps(n))
            cols.extend(f"cd._s_{n}" for n in self._code_text())
        if location_dim:
            joins.append(f"LEFT JOIN {location_dim} ld ON ld.location__raw = v.location__raw")
            cols.append("ld._location")
        return f"SELECT {', '.join(cols)} FROM v {' '.join(joins)}"

    # -- time ------------------------------------------------------------------------------

    def stage_parse(self) -> str:
        cols = ["*"]
        for name, spec in self.m.timestamps.items():
            raw = f"{name}__raw"
            ph = self._placeholder(name, raw) or "false"
            cols.append(f"{ph} AS {name}__ph")
            cols.append(f"CASE WHEN {ph} THEN NULL ELSE {parse_sql(spec, raw)} END "
                        f"AS {name}__parsed")
        for name in ("latitude", "longitude"):
            if self.m.column_spec(name):
                cols.append(f"TRY_CAST({name}__raw AS DOUBLE) AS {name}__num")
        return f"SELECT {', '.join(cols)} FROM j"

    def stage_zone(self) -> str:
        lo, hi = lit(self.ctx.min_time.isoformat(" ")), lit(self.ctx.max_time.isoformat(" "))
        cols, joins, valid = ["p.*"], [], []
        for i, (name, spec) in enumerate(self.m.timestamps.items()):
            parsed, ok = f"{name}__parsed", f"p.{name}__valid"
            # a possible time, or NULL: every later step is NULL for an impossible one
            valid.append(f"CASE WHEN {parsed} BETWEEN TIMESTAMP {lo} AND TIMESTAMP {hi} "
                         f"THEN {parsed} END AS {name}__valid")
            cols.append(f"({ok} IS NULL AND p.{parsed} IS NOT NULL) AS {name}__impossible")
            if set(spec.formats) & ABSOLUTE_FORMATS:
                utc = instant_sql(ok)
                cols.append(f"{utc} AS {name}__utc")
                cols.append(f"timezone({lit(self.m.time_zone)}, {utc}) AS {name}__local")
                cols.append(f"NULL::VARCHAR AS {name}__dst")
                continue
            z = f"z{i}"
            joins.append(join_sql(ok, z, self.ctx.tz_table))
            cols.append(f"{utc_sql(ok, z)} AS {name}__utc")
            cols.append(f"{ok} AS {name}__local")
            cols.append(f"{window_sql(ok, z)} AS {name}__dst")
        source = f"(SELECT *, {', '.join(valid)} FROM p)" if valid else "p"
        return f"SELECT {', '.join(cols)} FROM {source} p {' '.join(joins)}"

    def stage_order(self) -> str:
        """Null (and flag) a timestamp earlier than one that must precede it.

        Each field's ``__ok`` value depends on the ones before it, so they nest one per field.
        Comparisons are made at the coarsest precision the mapping declares.
        """
        unit = _TRUNC[self.coarsest_precision()]
        sql = "z"
        for name in (n for n in TIMESTAMP_FIELDS if n in self.m.timestamps):
            prevs = [f"{p}__ok" for p in _PREV.get(name, ()) if p in self.m.timestamps]
            utc = f"{name}__utc"
            check = "false"
            if prevs:
                latest = prevs[0] if len(prevs) == 1 else f"greatest({', '.join(prevs)})"
                a, b = (utc, latest) if unit is None else (
                    f"date_trunc('{unit}', {utc})", f"date_trunc('{unit}', {latest})")
                check = f"coalesce({a} < {b}, false)"
            sql = (f"(SELECT *, {check} AS {name}__order, CASE WHEN {check} THEN NULL "
                   f"ELSE {utc} END AS {name}__ok FROM {sql})")
        return f"SELECT * FROM {sql}"

    def coarsest_precision(self) -> Precision:
        return coarsest(spec.resolved_precision for spec in self.m.timestamps.values())

    def _call_at_sql(self) -> str:
        """``_call_at`` (the first valid timestamp) and the local time of its field."""
        order = [n for n in TIMESTAMP_FIELDS if n in self.m.timestamps]
        oks = ", ".join(f"{n}__ok" for n in order)
        local = " ".join(f"WHEN {n}__ok IS NOT NULL THEN {n}__local" for n in order)
        day = [n for n in order if self.m.timestamps[n].resolved_precision == Precision.DAY]
        day_basis = " OR ".join(f"({n}__ok IS NOT NULL AND {_none_before(n, order)})"
                                for n in day) or "false"
        return (f"coalesce({oks}) AS _call_at, CASE {local} END AS _local, "
                f"{day_basis} AS _day_only")

    # -- data quality and quarantine ----------------------------------------------------------

    def _problems(self) -> dict[str, Check]:
        """Per checked field: when it has a problem, which code(s), and its original value."""
        out: dict[str, Check] = {}
        checks = (*self._time_checks(), *self._coordinate_checks(), *self._map_checks(),
                  *self._placeholder_checks(), *self._length_checks())
        for field, check in checks:
            if field in out:  # several checks on one field: the first that fires
                earlier = out[field]
                out[field] = Check(f"coalesce({earlier.code}, {check.code})",
                                   f"coalesce({earlier.original}, {check.original})")
            else:
                out[field] = check
        return out

    def _time_checks(self) -> list[tuple[str, Check]]:
        checks = []
        for name in self.m.timestamps:
            raw = f"{name}__raw"
            unparsed = f"({raw} IS NOT NULL AND {name}__parsed IS NULL)"
            code = (f"CASE WHEN {name}__ph THEN {lit(Problem.PLACEHOLDER)} "
                    f"WHEN {unparsed} THEN {lit(Problem.UNPARSEABLE)} "
                    f"WHEN {name}__impossible THEN {lit(Problem.IMPOSSIBLE_DATE)} "
                    # a time can be both ambiguous (or skipped) and out of order
                    f"WHEN {name}__dst IS NOT NULL OR {name}__order "
                    f"THEN nullif(concat_ws(',{name}:', {name}__dst, CASE WHEN {name}__order "
                    f"THEN {lit(Problem.OUT_OF_ORDER)} END), '') END")
            checks.append((name, Check(code, raw)))
        return checks

    def _coordinate_checks(self) -> list[tuple[str, Check]]:
        if not (self.m.column_spec("latitude") and self.m.column_spec("longitude")):
            return []
        checks = []
        outside = ("(latitude__num IS NOT NULL AND longitude__num IS NOT NULL "
                   "AND NOT _coords_ok)")
        for name in ("latitude", "longitude"):
            raw, num = f"{name}__raw", f"{name}__num"
            unparsed = f"({raw} IS NOT NULL AND {num} IS NULL)"
            code = (f"CASE WHEN {unparsed} THEN {lit(Problem.UNPARSEABLE)} "
                    f"WHEN {outside} THEN {lit(Problem.OUT_OF_BOUNDS)} END")
            checks.append((name, Check(code, f"coalesce(CAST(round({num}, 3) AS VARCHAR), "
                                             f"{raw})")))
        return checks

    def _map_checks(self) -> list[tuple[str, Check]]:
        return [(name, Check(f"CASE WHEN {flag} THEN {lit(Problem.UNMAPPED_VALUE)} END",
                             self._map_source(name)))
                for name in _MAP_RAW if (flag := self._unmapped(name))]

    def _placeholder_checks(self) -> list[tuple[str, Check]]:
        checks = []
        for name in RAW_TEXT_FIELDS:
            text = self._field_text(name)
            if text and self._placeholder(name, text):
                original = f"{name}__placeholder"
                code = f"CASE WHEN {original} IS NOT NULL THEN {lit(Problem.PLACEHOLDER)} END"
                checks.append((name, Check(code, original)))
        return checks

    def _length_checks(self) -> list[tuple[str, Check]]:
        checks = []
        for name in (*_STORED_TEXT, "location"):
            if self.m.column_spec(name) is None:
                continue
            value = "_location" if name == "location" else f"{name}__raw"
            limit = FIELD_BY_NAME[name].max_chars
            code = (f"CASE WHEN strlen({value}) > {limit} AND length({value}) > {limit} "
                    f"THEN {lit(Problem.TRUNCATED)} END")
            checks.append((name, Check(code, value)))
        return checks

    def _unmapped(self, name: str) -> str | None:
        """Condition flagging a raw value the value map does not know (None: never flagged)."""
        if not self._maps(name):
            return None
        vmap = self.m.value_maps.get(name)
        if vmap is not None and vmap.default is not None:
            return None
        return f"({self._map_source(name)} IS NOT NULL AND _{name} IS NULL)"

    def _coordinates_valid(self) -> str:
        b = self.m.bounds
        base = ("latitude__num BETWEEN -90 AND 90 AND longitude__num BETWEEN -180 AND 180 "
                "AND NOT (latitude__num = 0 AND longitude__num = 0)")
        if b:
            base += (f" AND latitude__num BETWEEN {b.min_latitude} AND {b.max_latitude} "
                     f"AND longitude__num BETWEEN {b.min_longitude} AND {b.max_longitude}")
        return f"coalesce({base}, false)"

    def _flags_sql(self) -> str:
        """SQL: the row's flags as one comma-separated ``field:problem`` string, or NULL."""
        problems = self._problems()
        if not problems:
            return "NULL::VARCHAR"
        parts = ", ".join(f"{lit(f + ':')} || ({c.code})" for f, c in problems.items())
        # most rows have no problem: a few plain conditions find the rows that may have one,
        # and only for those are the codes (strings) built
        return (f"CASE WHEN coalesce({self._flag_guard()}, false) "
                f"THEN nullif(concat_ws(',', {parts}), '') END")

    def _flag_guard(self) -> str:
        """SQL true for every row some check of :meth:`_problems` fires on (and a few more).

        Each term covers a family of checks with fewer operations per row than the checks:
        every time problem leaves a raw value without a usable time, or is a DST window;
        every coordinate problem leaves coordinates that are not stored; no text is over its
        limit unless the longest checked text is over the smallest limit.
        """
        terms = [f"({n}__raw IS NOT NULL AND {n}__ok IS NULL) OR {n}__dst IS NOT NULL"
                 for n in self.m.timestamps]
        if self._coordinate_checks():
            terms.append("((latitude__raw IS NOT NULL OR longitude__raw IS NOT NULL) "
                         "AND NOT _coords_ok)")
        terms.extend(flag for name in _MAP_RAW if (flag := self._unmapped(name)))
        placeholders = [c.original for _, c in self._placeholder_checks()]
        if placeholders:
            terms.append(f"coalesce({', '.join(placeholders)}) IS NOT NULL")
        lengths = self._length_checks()
        if lengths:
            values = ", ".join(f"strlen({c.original})" for _, c in lengths)
            limit = min(FIELD_BY_NAME[f].max_chars or 0 for f, _ in lengths)
            terms.append(f"greatest({values}) > {limit}")
        return " OR ".join(f"({t})" for t in terms) or "false"

    def _originals_sql(self) -> str:
        """SQL: for a flagged row, each checked field's original value, by field name."""
        problems = self._problems()
        if not problems:
            return "NULL::MAP(VARCHAR, VARCHAR)"
        keys = ", ".join(lit(f) for f in problems)
        values = ", ".join(f"CAST({c.original} AS VARCHAR)" for c in problems.values())
        return f"CASE WHEN _flags IS NOT NULL THEN MAP([{keys}], [{values}]) END"

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

    def _raw_columns(self) -> list[str]:
        """Source columns kept with a quarantined or repeated row (identifying ones out)."""
        hidden = set(self.m.identifying.all)
        return [c for c in self.ctx.source_columns if c not in hidden]

    def record_sql(self) -> str:
        """SQL of the record the quarantine shows for a row: its source columns (see
        :meth:`_raw_columns`) by name, the location generalised (the lookup's ``_location``,
        under the location's first column), coordinates rounded, the rest as read.

        Built only for the few rows not stored (the main query puts it under a ``CASE``) and
        from values every row has anyway, so nothing here is computed for the rows stored,
        and the file never holds an exact address.
        """
        loc_spec = self.m.column_spec("location")
        loc_cols = [] if loc_spec is None or self.m.location.keep_exact \
            else loc_spec.source_columns
        coord_cols = {c for n in ("latitude", "longitude")
                      if (s := self.m.column_spec(n)) for c in s.source_columns}
        keys, items = [], []
        for col in self._raw_columns():
            value = f"nullif(CAST({ident(col)} AS VARCHAR), '')"
            if col in loc_cols:
                value = "_location" if col == loc_cols[0] else "NULL::VARCHAR"
            elif col in coord_cols:
                value = (f"coalesce(CAST(round(TRY_CAST({ident(col)} AS DOUBLE), 3) AS VARCHAR), "
                         f"{value})")
            keys.append(lit(col))
            items.append(value)
        return f"MAP([{', '.join(keys)}], [{', '.join(items)}])"

    # -- output ----------------------------------------------------------------------------

    def constants(self) -> dict[str, str]:
        """Fields with one value for the whole batch: kept once, beside the rows, not in them.

        A precision holds only where its timestamp is set (the calls view applies that).
        """
        out = {"source": self.m.name, "agency": self.m.agency, "batch_id": self.ctx.batch_id,
               "file_sha256": self.ctx.file_sha256, "time_zone": self.m.time_zone}
        for name, spec in self.m.timestamps.items():
            out[name.removesuffix("_at") + "_precision"] = spec.resolved_precision.value
        return out

    def output_columns(self) -> dict[str, str]:
        """Stored column name to SQL over stage ``c``: only fields this mapping can fill and
        that vary from row to row (see :meth:`constants`)."""
        out = {"source_record_id": "_rid"}
        if self.ctx.numbered:
            out["source_row"] = "_row"
        out.update(self._time_columns())
        out.update(self._type_columns())
        out.update(self._place_columns())
        out["class_key"] = class_key_sql({**out, "source": lit(self.m.name)})
        if "narrative" in out:
            out["narrative_flags"] = narrative_flags_sql(out["narrative"])
        m = self.m
        if m.attributes:
            keys = ", ".join(lit(a) for a in m.attributes)
            values = ", ".join(self.text(a) for a in m.attributes)
            out["attributes"] = f"MAP([{keys}], [{values}])"
        out["dq_flags"] = "string_split(_flags, ',')"
        return out

    def _time_columns(self) -> dict[str, str]:
        out = {}
        for name in self.m.timestamps:
            out[name] = f"{name}__ok"
        out["local_date"] = "CAST(_local AS DATE)"
        out["local_hour"] = "CASE WHEN _day_only THEN NULL ELSE CAST(hour(_local) AS TINYINT) END"
        return out

    def _type_columns(self) -> dict[str, str]:
        coded = self._code_text()
        out = {name: f"_s_{name}" if name in coded else _truncated(name, f"{name}__raw")
               for name in _STORED_TEXT if self.m.column_spec(name)}
        out["call_type"] = _truncated("call_type", self._call_type_choice())
        if self._maps("priority"):
            out["priority"] = "CAST(_priority AS TINYINT)"
        for name in ("disposition_group", "origin"):
            if self._maps(name):
                out[name] = f"_{name}"
        return out

    def _place_columns(self) -> dict[str, str]:
        out = {}
        if self.has_location():
            out["location"] = _truncated("location", "_location")
        if self.m.column_spec("latitude") and self.m.column_spec("longitude"):
            for name in ("latitude", "longitude"):
                out[name] = f"CASE WHEN _coords_ok THEN round({name}__num, 3) END"
        return out

    def query(self, source: str, resolve_ids: str | None = None, code_dim: str | None = None,
              location_dim: str | None = None, raw_text: str = "NULL::VARCHAR") -> str:
        """The main query: stored columns plus ``_route`` and ``_aside`` (see :data:`ASIDE`).

        ``resolve_ids`` names a table of id hashes (column ``h``, see :meth:`prepass_sql`) that
        repeat in this file or are already stored; their rows are routed to ``resolve`` and
        compared after the scan. ``raw_text`` is the landing's SQL of a malformed row's
        scrubbed text (:meth:`cswb.ingest.readers.Landing.text_sql`).
        """
        resolve = f"hash(_rid) IN (SELECT h FROM {resolve_ids})" if resolve_ids else "false"
        coords = (self._coordinates_valid() if self.m.column_spec("latitude")
                  and self.m.column_spec("longitude") else "false")
        stored = ", ".join(f"{expr} AS {name}" for name, expr in self.output_columns().items())
        return f"""
WITH t AS ({self.stage_trim(source)}),
v AS ({self.stage_values()}),
j AS ({self.stage_join(code_dim, location_dim)}),
p AS ({self.stage_parse()}),
z AS ({self.stage_zone()}),
o AS (SELECT *, {self._call_at_sql()}, {coords} AS _coords_ok FROM ({self.stage_order()})),
c AS (SELECT *, {self._flags_sql()} AS _flags, {self.reason_sql()} AS _reason,
      {resolve} AS _resolve FROM o)
SELECT {stored},
       CASE WHEN _reason IS NOT NULL THEN 'quarantine' WHEN _resolve THEN 'resolve'
            END AS _route,
       CASE WHEN _flags IS NOT NULL OR _reason IS NOT NULL OR _resolve THEN to_json(struct_pack(
           reason := _reason, dq_orig := {self._originals_sql()},
           record := CASE WHEN _fault IS NULL AND (_reason IS NOT NULL OR _resolve)
                          THEN {self.record_sql()} END,
           raw_text := {raw_text})) END AS _aside
FROM c
"""


def _none_before(name: str, order: list[str]) -> str:
    earlier = order[: order.index(name)]
    return " AND ".join(f"{n}__ok IS NULL" for n in earlier) or "true"


def _truncated(name: str, expr: str) -> str:
    """``expr`` cut to the field's length; only the (rare) long values are copied."""
    limit = FIELD_BY_NAME[name].max_chars
    if not limit:
        return expr
    return f"CASE WHEN strlen({expr}) > {limit} THEN left({expr}, {limit}) ELSE {expr} END"


def parse_sql(spec: TimeSpec, raw: str) -> str:
    """SQL parsing a raw timestamp string with the spec's formats into a naive TIMESTAMP."""
    strp = [f for f in spec.formats if f not in SPECIAL_FORMATS]
    parts = []
    if len(strp) == 1:  # one format: the scalar form, cheaper than the list form
        parts.append(f"try_strptime({raw}, {lit(strp[0])})")
    elif strp:
        formats = "[" + ", ".join(lit(f) for f in strp) + "]"
        parts.append(f"try_strptime({raw}, {formats})")
    for fmt in spec.formats:
        if fmt == "iso":
            parts.append(f"TRY_CAST({raw} AS TIMESTAMP)")
        elif fmt == "iso_offset":
            parts.append(f"CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AS TIMESTAMP)")
        elif fmt in _NUMERIC_FORMATS:
            parts.append(_numeric_time_sql(fmt, raw))
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


_NUMERIC_FORMATS = {
    # format: (microseconds per unit, the largest magnitude read: about year 5000 either way)
    "epoch_ms": (1_000, 1e14),
    "epoch_s": (1_000_000, 1e11),
    "excel": (86_400_000_000, 1e6),
}


def _numeric_time_sql(fmt: str, raw: str) -> str:
    """SQL of a number read as a time; NULL for a value that is no number or too large to be
    a time (``inf``, ``1e300``), never an overflow error."""
    unit, largest = _NUMERIC_FORMATS[fmt]
    number = f"TRY_CAST({raw} AS DOUBLE)"
    micros = f"CAST(round({number} * {unit}) AS BIGINT)"
    value = (f"TIMESTAMP '1899-12-30' + to_microseconds({micros})" if fmt == "excel"
             else f"CAST(make_timestamp({micros}) AS TIMESTAMP)")
    return f"CASE WHEN abs({number}) < {largest:.0e} THEN {value} END"


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
