"""Property tests of the timestamp and mapping parsers (Hypothesis).

- every declared format reads back the instant Python's own parser reads from the same text;
- no text, however hostile, makes a timestamp expression fail: it is a time or NULL;
- value maps give what their documented order of precedence says;
- any mapping a user could write is either refused with a clear :class:`MappingError` or
  ingests a file written for it with every row accounted for, hostile names and values
  included, and its identifying column nowhere in the store.
"""

from __future__ import annotations

import csv
import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cswb.errors import CswbError, MappingError
from cswb.ingest.mapping import TimeSpec, ValueMap, parse_mapping, re2_problem
from cswb.ingest.pipeline import ingest_file
from cswb.ingest.transform import parse_sql
from cswb.ingest.valuemaps import DEFAULT_RULES, value_map_sql
from cswb.settings import load_settings
from cswb.storage import open_analytic_store
from cswb.storage.sql import run

STRP_FORMATS = [
    "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M", "%d.%m.%Y %H:%M",
    "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S", "%m/%d/%y %I:%M %p", "%Y-%m-%d", "%d/%m/%Y",
]
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 12, 31))


def _duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    run(con, "SET TimeZone = 'UTC'")
    return con


def _parse(texts: list[str | None], formats: list[str]) -> list[Any]:
    """Each text through the ingest's parse of a timestamp declared with ``formats``."""
    con = _duck()
    con.register("raw", pa.table({"i": list(range(len(texts))),
                                  "v": pa.array(texts, pa.string())}))
    expr = parse_sql(TimeSpec(column="v", formats=formats), "v")
    return [r[0] for r in run(con, f"SELECT {expr} FROM raw ORDER BY i")]


@settings(max_examples=80, deadline=None)
@given(stamps=st.lists(instants, min_size=1, max_size=20), fmt=st.sampled_from(STRP_FORMATS))
def test_every_format_reads_what_python_reads(stamps: list[datetime], fmt: str) -> None:
    texts = [s.strftime(fmt) for s in stamps]
    expected = [datetime.strptime(t, fmt) for t in texts]
    assert _parse(texts, [fmt]) == expected


@settings(max_examples=40, deadline=None)
@given(stamps=st.lists(instants, min_size=1, max_size=20),
       pair=st.lists(st.sampled_from(STRP_FORMATS), min_size=2, max_size=2, unique=True),
       pick=st.lists(st.booleans(), min_size=20, max_size=20))
def test_several_formats_each_value_by_the_first_that_reads_it(
        stamps: list[datetime], pair: list[str], pick: list[bool]) -> None:
    texts = [s.strftime(pair[int(p)]) for s, p in zip(stamps, pick, strict=False)]
    expected = []
    for text in texts:
        for fmt in pair:
            try:
                expected.append(datetime.strptime(text, fmt))
                break
            except ValueError:
                continue
    assert _parse(texts, pair) == expected


@settings(max_examples=60, deadline=None)
@given(stamps=st.lists(instants.map(lambda d: d.replace(microsecond=0)), min_size=1,
                       max_size=20))
def test_special_formats_read_the_instant(stamps: list[datetime]) -> None:
    epoch = datetime(1970, 1, 1)
    seconds = [int((s - epoch).total_seconds()) for s in stamps]
    assert _parse([str(v) for v in seconds], ["epoch_s"]) == stamps
    assert _parse([str(v * 1000) for v in seconds], ["epoch_ms"]) == stamps
    assert _parse([s.isoformat(" ") for s in stamps], ["iso"]) == stamps
    assert _parse([s.isoformat() + "-05:00" for s in stamps], ["iso_offset"]) == \
        [s + timedelta(hours=5) for s in stamps]
    serials = [f"{(s - datetime(1899, 12, 30)).total_seconds() / 86400:.10f}" for s in stamps]
    got = _parse(serials, ["excel"])
    assert all(abs((g - s).total_seconds()) < 0.01 for g, s in zip(got, stamps, strict=True))


hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="0123456789/:-. APMapm'\"\\\t", max_size=40),
    st.sampled_from(["", " ", "00/00/0000 00:00:00", "13/45/2021 25:61:61 PM", "9" * 400,
                     "'; DROP TABLE calls; --", "NaN", "inf", "-1e309", "1e20"]),
)


@settings(max_examples=80, deadline=None)
@given(texts=st.lists(st.one_of(st.none(), hostile_text), min_size=1, max_size=30),
       formats=st.lists(st.sampled_from([*STRP_FORMATS, "iso", "iso_offset"]), min_size=1,
                        max_size=3, unique=True))
def test_hostile_text_is_a_time_or_null(texts: list[str | None], formats: list[str]) -> None:
    for value in _parse(texts, formats):
        assert value is None or isinstance(value, datetime)


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(st.one_of(st.none(), hostile_text), min_size=1, max_size=30),
       fmt=st.sampled_from(["epoch_ms", "epoch_s", "excel"]))
def test_hostile_numbers_are_a_time_or_null(texts: list[str | None], fmt: str) -> None:
    for value in _parse(texts, [fmt]):
        assert value is None or isinstance(value, datetime)


# -- value maps -------------------------------------------------------------------------------

words = st.text(alphabet="ABCDEFGHIJ -/", min_size=1, max_size=8)


def reference_map(field: str, raw: str | None, vmap: ValueMap) -> str | int | None:
    """The documented precedence, in Python: exact values (trimmed, any case), the mapping's
    patterns, cswb's default rules, then the map's default."""
    if raw is None:
        return None
    exact = {k.strip().upper(): v for k, v in vmap.values.items()}
    if raw.strip().upper() in exact:
        return exact[raw.strip().upper()]
    rules = [*vmap.patterns, *(DEFAULT_RULES.get(field, ()) if vmap.use_default_rules else ())]
    for rule in rules:
        if re.search(rule.pattern, raw, re.IGNORECASE):
            return rule.value
    return vmap.default


@settings(max_examples=80, deadline=None)
@given(raws=st.lists(st.one_of(st.none(), words), min_size=1, max_size=20),
       exact=st.dictionaries(words, st.sampled_from(["arrest", "report", "cancelled"]),
                             max_size=4),
       literals=st.lists(st.tuples(words, st.sampled_from(["warning", "citation"])),
                         max_size=3),
       default=st.one_of(st.none(), st.just("no_action")),
       use_defaults=st.booleans())
def test_value_maps_follow_their_precedence(raws: list[str | None], exact: dict[str, str],
                                            literals: list[tuple[str, str]],
                                            default: str | None, use_defaults: bool) -> None:
    vmap = ValueMap.model_validate({
        "values": exact, "default": default, "use_default_rules": use_defaults,
        "patterns": [{"pattern": re.escape(w), "value": v} for w, v in literals]})
    con = _duck()
    con.register("raw", pa.table({"i": list(range(len(raws))), "v": pa.array(raws, pa.string())}))
    expr, _ = value_map_sql("disposition_group", "v", vmap)
    got = [r[0] for r in run(con, f"SELECT {expr} FROM raw ORDER BY i")]
    assert got == [reference_map("disposition_group", r, vmap) for r in raws]


# -- a column's text --------------------------------------------------------------------------

_TOKENS = "(?i)(NULL|N/A|NA|NONE|\\#N/A|\\-)"


def _two_step_text(c: str) -> str:
    """The text of a column as it was computed before one CASE did it: trimmed where a space
    starts or ends it, then empty values and null tokens NULL (the reference)."""
    t = f"CASE WHEN starts_with({c}, ' ') OR ends_with({c}, ' ') THEN trim({c}) ELSE {c} END"
    return (f"CASE WHEN fault IS NOT NULL THEN NULL WHEN strlen({t}) > 4 THEN {t} "
            f"WHEN {t} = '' OR regexp_full_match({t}, '{_TOKENS}') THEN NULL ELSE {t} END")


texts = st.one_of(st.none(), st.text(max_size=8), st.sampled_from(
    ["", " ", "   ", "NA", " na ", "N/A ", " #n/a", "-", " - ", "--", "NULL", "nulls", " NONE",
     "\tNA", "NA\t", " x ", "x ", "é ", " P1"]))


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.tuples(texts, st.booleans()), min_size=1, max_size=30))
def test_a_columns_text_is_the_trimmed_value_with_nulls_made_null(
        values: list[tuple[str | None, bool]]) -> None:
    from cswb.ingest.mapping import builtin_mapping
    from cswb.ingest.transform import CallSql, Context

    mapping = builtin_mapping("synthetic_cad")
    sql = CallSql(mapping, Context(mapping.used_columns(), "b", "", datetime(2000, 1, 1),
                                   datetime(2030, 1, 1)))
    con = _duck()
    con.register("raw", pa.table({
        "i": list(range(len(values))), "Priority": pa.array([v for v, _ in values], pa.string()),
        "fault": [("missing_columns" if f else None) for _, f in values]}))
    one_case = sql._text_sql("Priority").replace("_fault", "fault")
    got = run(con, f"SELECT {one_case}, {_two_step_text('Priority')} FROM raw ORDER BY i")
    assert [a for a, _ in got] == [b for _, b in got]


# -- whole mappings ---------------------------------------------------------------------------

column_names = st.one_of(
    st.sampled_from(["id", "Call Received", "Type", "Priority", "Disposition", "Addr",
                     "lat", "lon", "Beat", "Source"]),
    st.text(alphabet="abcXYZ 09_-'\";é|", min_size=1, max_size=10).filter(lambda s: s.strip()),
)
cell = st.one_of(st.text(max_size=20), st.sampled_from(
    ["", "N/A", "NULL", "-", "'", '"', "a,b", "line\nbreak", " padded ", "UNK", "P1", "911",
     "ARR - ARREST MADE", "1200 N MAIN ST APT 4", "41.88", "-87.63", "00/00/0000"]))


@st.composite
def mappings_and_files(draw: Any) -> tuple[dict[str, Any], list[str], list[list[str]]]:
    """A mapping a user might write (sometimes wrong), and a CSV written for it."""
    names = draw(st.lists(column_names, min_size=4, max_size=8,
                          unique_by=lambda s: s.strip().lower()))
    rid, stamp, kind, *rest = names
    fmt = draw(st.sampled_from(STRP_FORMATS))
    fields: dict[str, Any] = {"initial_call_type": kind}
    for field, column in zip(["priority_raw", "disposition_raw", "location", "beat"], rest,
                             strict=False):
        fields[field] = column
    mapping: dict[str, Any] = {
        "name": "prop_test", "agency": draw(st.text(max_size=15)),
        "time_zone": draw(st.sampled_from(["America/Chicago", "UTC", "Asia/Kolkata",
                                           "Not/AZone"])),
        "file": {"format": "csv", "delimiter": draw(st.sampled_from([",", ";", "|", "auto"]))},
        "timestamps": {"received_at": {"column": stamp, "formats": [fmt]}},
        "fields": fields,
        "identifying": {"drop": ["caller phone"]},
    }
    if draw(st.booleans()):
        mapping["record_id"] = rid
    else:
        mapping["natural_key"] = [stamp, kind]
    if draw(st.booleans()):
        mapping["placeholders"] = {"*": {"values": draw(st.lists(cell, max_size=3))}}
    if draw(st.booleans()):
        mapping["value_maps"] = {"priority": {
            "values": draw(st.dictionaries(cell, st.sampled_from([1, 2, 3, 4, 9]),
                                           max_size=3)),
            "patterns": [{"pattern": draw(st.sampled_from(["^P([1-4])", "(?=x)", "[", "UNK"])),
                          "value": 1}]}}
    if draw(st.booleans()):
        mapping["bounds"] = {"min_latitude": 41, "max_latitude": 43,
                             "min_longitude": draw(st.sampled_from([-89, 10])),
                             "max_longitude": -87}
    header = [*names, "caller phone"]
    rows = []
    for i in range(draw(st.integers(0, 12))):
        row = [draw(cell) for _ in header]
        row[0] = draw(st.one_of(st.just(f"R{i % 5}"), cell))
        row[1] = draw(st.one_of(instants.map(lambda d: d.strftime(fmt)), cell))
        row[-1] = f"(312) 555-01{i:02d}"
        rows.append(row)
    return mapping, header, rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mappings_and_files())
def test_any_mapping_is_refused_clearly_or_ingests_every_row(
        case: tuple[dict[str, Any], list[str], list[list[str]]]) -> None:
    data, header, rows = case
    try:
        mapping = parse_mapping(data)
    except MappingError as exc:
        event("mapping refused")
        assert "is not a valid mapping" in str(exc)
        return
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        path = tmp / "calls.csv"
        delimiter = data["file"]["delimiter"]
        with open(path, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, delimiter="," if delimiter == "auto" else delimiter).writerows(
                [header, *rows])
        settings_ = load_settings(data_dir=tmp / "var", store_url=f"duckdb:///{tmp / 'store'}",
                                  duckdb_memory_limit="512MB", classify_at_ingest=False)
        store = open_analytic_store(settings_.resolved_store_url, settings_)
        try:
            summary = ingest_file(path, mapping, store, settings_)
        except CswbError as exc:  # a clear refusal (a header it cannot use, a column missing)
            event(f"file refused: {type(exc).__name__}")
            assert str(exc) and "555-01" not in str(exc)
            return
        event("ingested")
        assert summary.reconciles
        assert summary.rows_read == len(rows)
        con = store.connect()
        try:
            for table in ("calls", "quarantine", "call_quality"):
                dump = str(run(con, f"SELECT * FROM {table}"))
                assert "555-01" not in dump, table
        finally:
            con.close()


@pytest.mark.parametrize("pattern", ["(?=x)911", r"(a)\1", "(?<!x)a", "["])
def test_patterns_re2_cannot_run_are_refused_at_load(pattern: str) -> None:
    assert re2_problem(pattern)
    base: dict[str, Any] = {
        "name": "re2_test", "agency": "A", "time_zone": "UTC", "record_id": "id",
        "timestamps": {"received_at": {"column": "t", "formats": ["%Y-%m-%d"]}},
        "fields": {"initial_call_type": "type"}}
    for where in ({"value_maps": {"origin": {"patterns": [{"pattern": pattern,
                                                             "value": "911"}]}}},
                  {"placeholders": {"*": {"patterns": [pattern]}}},
                  {"location": {"strip": [pattern]}}):
        with pytest.raises(MappingError, match="RE2"):
            parse_mapping({**base, **where})


@pytest.mark.parametrize(("value_map", "problem"), [
    ({"values": {"P1": True}}, "values.P1: should be a valid string or a valid integer "
                               "(got True)"),
    ({"values": {"P1": 1}, "default": 2.5}, "default: should be a valid string or a valid "
                                            "integer (got 2.5)"),
    ({"patterns": [{"pattern": "^P", "value": False}]}, "patterns.0.value: should be"),
])
def test_value_map_targets_are_not_coerced(value_map: dict[str, Any], problem: str) -> None:
    """YAML reads ``yes``, ``on`` or ``true`` as a boolean, which pydantic would take as 1."""
    base: dict[str, Any] = {
        "name": "strict_test", "agency": "A", "time_zone": "UTC", "record_id": "id",
        "timestamps": {"received_at": {"column": "t", "formats": ["%Y-%m-%d"]}},
        "fields": {"initial_call_type": "type", "priority_raw": "p"},
        "value_maps": {"priority": value_map}}
    with pytest.raises(MappingError) as raised:
        parse_mapping(base)
    assert f"value_maps.priority.{problem}" in str(raised.value)
