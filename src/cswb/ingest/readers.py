"""File adapters: CSV (any delimiter and encoding), Excel, Parquet and JSON lines.

Each adapter turns a file into a :class:`Landing`: SQL that yields one row per record with
``_ord`` (1-based ordinal among the records it yields), an optional ``_fault`` (a quarantine
reason for a record that was read but is malformed), ``_fields`` (only for such a record: its
fields as read, a list) and every source column as VARCHAR. The raw text of a malformed record
is built from its ``_fields`` by the SQL of :meth:`Landing.text_sql`, which the mapping pass
runs for those few records only. Records the adapter could not yield at all (a CSV row with
the wrong number of fields, undecodable bytes, an unclosed quote) are reported by
:meth:`Landing.rejects` after a scan, with their data row numbers, so that nothing is lost.
"""

from __future__ import annotations

import codecs
import copy
import gzip
import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from cswb.domain.quality import QuarantineReason
from cswb.errors import SourceFileError
from cswb.ingest.mapping import FileSpec
from cswb.ingest.sniff import NATIVE_ENCODINGS, SAMPLE_BYTES, sniff, unique_names

_EXTENSIONS = {
    ".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "excel", ".xlsm": "excel",
    ".xls": "excel", ".ods": "excel", ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
}

_REJECT_REASONS = {
    "MISSING COLUMNS": QuarantineReason.MISSING_COLUMNS,
    "TOO MANY COLUMNS": QuarantineReason.TOO_MANY_COLUMNS,
    "UNQUOTED VALUE": QuarantineReason.UNBALANCED_QUOTE,
    "INVALID ENCODING": QuarantineReason.INVALID_ENCODING,
    "INVALID UNICODE": QuarantineReason.INVALID_ENCODING,
    "LINE SIZE OVER MAXIMUM": QuarantineReason.LINE_TOO_LONG,
}

_SCRUB_PATTERNS = (
    # international numbers (a leading +), then North American ones; neither inside a longer
    # run of digits (an epoch-millisecond time is no phone number)
    (r"(^|[^0-9])\+[0-9]{1,3}[ .-]?\(?[0-9][0-9 .()-]{5,16}[0-9]\b", r"\1[phone]"),
    (r"(^|[^0-9+])(1[ .-]?)?\(?[0-9]{3}\)?[ .-]?[0-9]{3}[ .-]?[0-9]{4}\b", r"\1[phone]"),
    (r"(^|[^0-9.+-])[0-9]{3}-[0-9]{4}\b", r"\1[phone]"),  # a local number: 555-0144
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "[email]"),
)
"""Applied to the raw text of records that could not be split into columns, whose identifying
columns therefore cannot be dropped by name."""

OVERFLOW_COLUMNS = 8
"""Columns the padded CSV reader declares beyond the header: a row with up to this many fields
too many is yielded (and quarantined) in place; one with more is rejected by the reader."""

_NO_NULL = "\x01\x02cswb-no-null\x02\x01"
"""The padded reader's null string: no field is this text, so only padding reads as NULL."""


@dataclass(frozen=True)
class Reject:
    """A record the reader could not turn into columns."""

    row: int
    reason: QuarantineReason
    detail: str
    raw_text: str


class Landing(Protocol):
    """The records of one file as SQL over VARCHAR columns."""

    columns: list[str]
    file_format: str
    encoding: str | None
    delimiter: str | None

    def scan(self, numbered: bool = True) -> str:
        """SQL of a relation: ``_ord``, ``_fault``, ``_fields`` and the file's columns.

        ``numbered=False`` lets a reader skip numbering (``_ord`` may then be NULL) where that
        costs parallelism; records still come in file order.
        """
        ...

    def text_sql(self) -> str:
        """SQL over a scanned row: a malformed record's raw text from its ``_fields``,
        scrubbed (NULL for the others)."""
        ...

    def rejects(self, con: duckdb.DuckDBPyConnection) -> list[Reject]:
        """Records rejected by the last scan (valid after one full scan)."""
        ...


@dataclass
class SourceFile:
    """A file to ingest, with its format, size and content hash."""

    path: Path
    file_format: str
    size: int
    sha256: str = ""

    @classmethod
    def inspect(cls, path: Path, declared: str = "auto") -> SourceFile:
        if not path.is_file():
            raise SourceFileError(f"{path} does not exist or is not a file")
        size = path.stat().st_size
        if size == 0:
            raise SourceFileError(f"{path.name} is empty (0 bytes)")
        return cls(path, detect_format(path, declared), size)

    def compute_hash(self) -> str:
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            while chunk := handle.read(8 * 1024 * 1024):
                digest.update(chunk)
        self.sha256 = digest.hexdigest()
        return self.sha256


def detect_format(path: Path, declared: str = "auto") -> str:
    """The declared format, or the one the file's extension names."""
    if declared != "auto":
        return declared
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _EXTENSIONS:
        return _EXTENSIONS[suffixes[-1]]
    raise SourceFileError(
        f"cannot tell the format of {path.name} from its extension; declare file.format "
        "(csv, excel, parquet or jsonl) in the mapping"
    )


def open_landing(source: SourceFile, spec: FileSpec, max_line_bytes: int,
                 workdir: Path, con: duckdb.DuckDBPyConnection, *,
                 identifying: Sequence[str] = (), locations: Sequence[str] = ()) -> Landing:
    """The adapter for ``source``'s format. ``identifying`` and ``locations`` name the columns
    whose values a malformed row's raw text must withhold or generalise (CSV and Excel)."""
    if source.file_format == "csv":
        return CsvLanding(source.path, spec, max_line_bytes, workdir,
                          identifying=identifying, locations=locations)
    if source.file_format == "excel":
        return ArrowLanding.from_excel(source.path, spec.sheet, con, identifying=identifying,
                                       locations=locations)
    if source.file_format == "parquet":
        return ParquetLanding(source.path, con)
    if source.file_format == "jsonl":
        return JsonLinesLanding(source.path, max_line_bytes, con, workdir)
    raise SourceFileError(f"unsupported file format {source.file_format!r}")


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class CsvLanding:
    """Delimited text read by DuckDB's parallel CSV reader, every column as VARCHAR.

    A row with the wrong number of fields is the commonest fault of a CAD export. By default the
    reader is *padded*: it declares :data:`OVERFLOW_COLUMNS` columns beyond the header and pads a
    short row with NULLs (an empty field reads as ``''``: the reader's null string is a
    sentinel no field holds), so such rows are yielded, in order, with ``_fault`` set and their
    fields in ``_fields`` (their text, re-quoted and scrubbed, comes from :meth:`text_sql`).
    Every record then keeps its position, and the rows need no renumbering. DuckDB's parallel
    reader cannot pad rows in a file with quoted line breaks; for such a file :meth:`strict`
    gives the strict reader, which rejects those rows (reported by :meth:`rejects` with their
    line numbers).
    """

    file_format = "csv"

    def __init__(self, path: Path, spec: FileSpec, max_line_bytes: int, workdir: Path, *,
                 padded: bool = True, identifying: Sequence[str] = (),
                 locations: Sequence[str] = ()) -> None:
        self.spec = spec
        self.identifying, self.locations = list(identifying), list(locations)
        self.max_line_bytes = max_line_bytes
        dialect = sniff(_sample_path(path, workdir), encoding=spec.encoding,
                        delimiter=spec.delimiter, quote=spec.quote, header=spec.header,
                        column_names=spec.column_names)
        self.dialect = dialect
        self.encoding: str | None = dialect.encoding
        self.delimiter: str | None = dialect.delimiter
        self.columns = dialect.header
        self.path = path
        if dialect.encoding not in NATIVE_ENCODINGS:
            self.path = _transcode(path, dialect.encoding, workdir)
        self.padded = padded
        self.workdir = workdir
        self.newlines_normalised = False
        self._tag = uuid.uuid4().hex[:8]
        self._extra = [f"__cswb_extra_{i}" for i in range(OVERFLOW_COLUMNS)]

    def strict(self) -> CsvLanding:
        """The same file read by the strict reader (for files with quoted line breaks)."""
        landing = copy.copy(self)
        landing.padded = False
        landing._tag = uuid.uuid4().hex[:8]
        return landing

    def with_newlines_normalised(self) -> CsvLanding:
        """The same records from a copy whose line breaks are all LF (DuckDB's reader stops
        on a file mixing CRLF, LF and lone CR); read padded again. Undecodable bytes are
        copied as they are, so the reader still quarantines their rows."""
        landing = copy.copy(self)
        landing.padded, landing.newlines_normalised = True, True
        landing._tag = uuid.uuid4().hex[:8]
        # a file in an encoding DuckDB does not read was transcoded to UTF-8 already
        encoding = (self.dialect.encoding if self.dialect.encoding in NATIVE_ENCODINGS
                    else "utf-8")
        landing.path = _normalise_newlines(self.path, encoding, self.workdir)
        return landing

    def _read_csv(self) -> str:
        names = [*self.columns, *(self._extra if self.padded else [])]
        columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in names) + "}"
        encoding = NATIVE_ENCODINGS.get(self.dialect.encoding, "utf-8")
        quote = self.spec.quote
        options = [
            f"columns = {columns}", "auto_detect = false", f"header = {self.spec.header!s}",
            f"delim = {_lit(self.dialect.delimiter)}", f"quote = {_lit(quote)}",
            f"escape = {_lit(quote)}",
            f"encoding = {_lit(encoding)}", f"max_line_size = {self.max_line_bytes}",
            f"buffer_size = {max(32 * 1024 * 1024, 2 * self.max_line_bytes)}",
            "store_rejects = true", f"rejects_table = 'rejects_{self._tag}'",
            f"rejects_scan = 'rejects_scan_{self._tag}'", "strict_mode = true",
        ]
        if self.padded:
            options += ["null_padding = true", f"nullstr = {_lit(_NO_NULL)}"]
        return f"read_csv({_lit(str(self.path))}, {', '.join(options)})"

    def scan(self, numbered: bool = True) -> str:
        cols = ", ".join(_ident(c) for c in self.columns)
        if not self.padded:
            head = (f"NULL::VARCHAR AS _fault, NULL::VARCHAR[] AS _fields, "
                    f"NULL::INTEGER AS _shift, {cols}")
        else:
            # an empty field reads as '' (NULL from the strict reader): the mapping's null
            # handling treats both alike. A malformed row's fields, and how far they moved
            # (fields set less the header's count), only under CASEs whose branches repeat no
            # subexpression (DuckDB hoists a repeated one out of a CASE, for every row).
            every = [*self.columns, *self._extra]
            names = ", ".join(_ident(c) for c in every)
            count = " + ".join(f"({_ident(c)} IS NOT NULL)::INTEGER" for c in every)
            fault = self._fault_sql()
            head = (f"{fault} AS _fault, CASE WHEN {fault} IS NOT NULL THEN [{names}] END "
                    f"AS _fields, CASE WHEN {fault} IS NOT NULL THEN {count} - "
                    f"{len(self.columns)} END AS _shift, {cols}")
        if not numbered:  # WITH ORDINALITY would make DuckDB read the file on one thread
            return f"(SELECT NULL::BIGINT AS _ord, {head} FROM {self._read_csv()})"
        return f"(SELECT ordinality AS _ord, {head} FROM {self._read_csv()} WITH ORDINALITY)"

    def _fault_sql(self) -> str:
        """A padded row's fault: a NULL last column was padded, a set extra one overflowed."""
        return (f"CASE WHEN {_ident(self.columns[-1])} IS NULL "
                f"THEN {_lit(QuarantineReason.MISSING_COLUMNS)} "
                f"WHEN {_ident(self._extra[0])} IS NOT NULL "
                f"THEN {_lit(QuarantineReason.TOO_MANY_COLUMNS)} END")

    def text_sql(self) -> str:
        """A faulty row's fields re-quoted where needed, joined, scrubbed.

        Its fields are out of place, so identifying ones cannot be dropped by name: a row with
        ``d`` fields too many (or too few) holds an identifying column's value within ``d``
        places after (or before) that column's own, and every field in that window is withheld;
        house numbers in the windows of the location's columns are cut to the hundred block;
        phone numbers and e-mail addresses anywhere are scrubbed.

        The mapping pass computes it while it reads the file, so that no field as read is
        written: one ``CASE`` whose work is a lambda over the field list, which DuckDB runs
        only for the faulty rows (an expression repeated outside a lambda would be hoisted out
        of the ``CASE`` and run for every row).
        """
        text = fields_text_sql("_fields", "_shift", self.layout, requote=True)
        return f"CASE WHEN _fields IS NOT NULL THEN {text} END"

    @property
    def layout(self) -> FieldLayout:
        return FieldLayout(self.columns, self.identifying, self.locations,
                           self.dialect.delimiter, self.spec.quote)

    def _line_text_sql(self) -> str:
        """SQL of a rejected record's text (``csv_line``), split by hand: each physical line
        into fields at the delimiter, its shift from the header's field count giving the
        windows of :func:`fields_text_sql` (an unclosed quote swallows whole rows after it,
        which keep their text)."""
        split = f"string_split(_l, {_lit(self.dialect.delimiter)})"
        line = fields_text_sql(split, f"(len({split}) - {len(self.columns)})", self.layout,
                               requote=False)
        lines = f"list_transform(string_split(csv_line, chr(10)), lambda _l: {line})"
        return f"array_to_string({lines}, chr(10))"

    def rejects(self, con: duckdb.DuckDBPyConnection) -> list[Reject]:
        table = f"rejects_{self._tag}"
        try:
            rows = con.execute(
                f"""
                SELECT line, arg_min(error_type::VARCHAR, byte_position),
                       arg_min(error_message, byte_position),
                       arg_min({self._line_text_sql()}, byte_position)
                FROM {table} WHERE scan_id = (SELECT max(scan_id) FROM {table})
                GROUP BY line ORDER BY line
                """
            ).fetchall()
        except duckdb.CatalogException:
            return []
        offset = 1 if self.spec.header else 0
        return [
            Reject(int(line) - offset,
                   _REJECT_REASONS.get(etype, QuarantineReason.MALFORMED_RECORD),
                   _detail(message) + _spanned(text or ""), text or "")
            for line, etype, message, text in rows
        ]


_HOUSE_DIGITS = r"^(\s*)([0-9]{0,7}?)[0-9]{1,2}(-?[A-Za-z]|-[0-9]+)? "
"""A value starting like a street address with a house number: its last two digits (and a
unit suffix) become ``XX``, the hundred block (``5237 N 35TH ST``: ``52XX N 35TH ST``)."""


def _window_sql(position: str, columns: list[int], shift: str) -> str | None:
    """SQL: whether the field at SQL ``position`` may hold the value of one of ``columns`` in
    a row whose fields are shifted by ``shift`` (positive: fields too many; negative: too
    few)."""
    if not columns:
        return None
    return "(" + " OR ".join(
        f"({position} - {c}) BETWEEN least({shift}, 0) AND greatest({shift}, 0)"
        for c in columns) + ")"


@dataclass(frozen=True)
class FieldLayout:
    """Where a file's identifying and location columns sit, and how its fields are joined."""

    columns: list[str]
    identifying: list[str]
    locations: list[str]
    delimiter: str = ","
    quote: str = '"'

    def positions(self, names: list[str]) -> list[int]:
        return [self.columns.index(c) for c in names if c in self.columns]


def fields_text_sql(fields: str, shift: str, layout: FieldLayout, requote: bool) -> str:
    """SQL of the text of a record's fields (the list ``fields``, out of place by ``shift``),
    joined by the delimiter: fields in an identifying column's window withheld, house numbers
    in the location's cut to the hundred block, phones and e-mail addresses scrubbed;
    ``requote``: fields quoted where needed (fields a reader split, not split by hand)."""
    i = "(_i - 1)"  # the field's 0-based position
    field = "_x"
    house = _window_sql(i, layout.positions(layout.locations), shift)
    if house:
        # the hundred block, by one substitution: the last two digits of the number
        field = (f"CASE WHEN {house} THEN regexp_replace(_x, {_lit(_HOUSE_DIGITS)}, "
                 f"'\\1\\2XX ') ELSE _x END")
    quote, delim = layout.quote, layout.delimiter
    if requote:
        quoted = (f"(lambda _v: CASE WHEN regexp_matches(_v, "
                  f"{_lit(_needs_quotes(delim, quote))}) THEN {_lit(quote)} || "
                  f"replace(_v, {_lit(quote)}, {_lit(quote * 2)}) || {_lit(quote)} "
                  "ELSE _v END)")
        field = f"list_transform([{field}], {quoted})[1]"
    hidden = _window_sql(i, layout.positions(layout.identifying), shift)
    if hidden:
        field = f"CASE WHEN _x IS NOT NULL AND {hidden} THEN '[withheld]' ELSE {field} END"
    joined = (f"array_to_string(list_filter(list_transform({fields}, lambda _x, _i: {field}), "
              f"lambda _y: _y IS NOT NULL), {_lit(delim)})")
    return _scrub_sql(joined)


def _needs_quotes(delimiter: str, quote: str) -> str:
    """RE2 pattern of a field that must be quoted to be read back as one field."""
    return "[" + "".join(re.escape(ch) for ch in (delimiter, quote)) + r"\n\r]"


def is_quoted_newline_error(exc: BaseException) -> bool:
    """Whether DuckDB refused to pad rows because the file has quoted line breaks."""
    return isinstance(exc, duckdb.Error) and "null_padding in conjunction with quoted new " \
        "lines" in str(exc)


def _spanned(text: str) -> str:
    """More detail for a rejected record over several lines: an unclosed quote makes the
    rows after it part of one field, so they are in this record, not read as rows."""
    lines = text.count("\n") + 1
    if lines < 2:
        return ""
    return (f" (the record runs over {lines} lines of the file: the rows after the unclosed "
            "quote are inside it, in its raw text, and are not counted as rows read)")


def _detail(message: str | None) -> str:
    first = (message or "").splitlines()[0] if message else ""
    return first[:300]


def _scrub_sql(column: str) -> str:
    expr = column
    for pattern, replacement in _SCRUB_PATTERNS:
        expr = f"regexp_replace({expr}, {_lit(pattern)}, {_lit(replacement)}, 'g')"
    return expr


def _sample_path(path: Path, workdir: Path) -> Path:
    """``path`` itself, or for a gzip file a decompressed sample of its start."""
    if path.suffix.lower() != ".gz":
        return path
    sample = workdir / f"sample-{uuid.uuid4().hex[:8]}.csv"
    try:
        with gzip.open(path, "rb") as handle:
            sample.write_bytes(handle.read(SAMPLE_BYTES))
    except (OSError, EOFError) as exc:  # EOFError: cut short (an interrupted download)
        raise _unreadable_gzip(path, exc) from None
    return sample


def _open_source(path: Path, mode: str = "rb", **options: Any) -> Any:
    """A source file opened for reading, decompressed when it is a ``.gz``."""
    return (gzip.open if path.suffix.lower() == ".gz" else open)(path, mode, **options)


def _unreadable_gzip(path: Path, exc: BaseException) -> SourceFileError:
    return SourceFileError(f"{path.name} is not a readable gzip file: {exc}")


def _has_lone_cr(path: Path) -> bool:
    """Whether a file has a CR that does not start a CRLF (a line break of its own)."""
    previous = b""
    try:
        with _open_source(path) as handle:
            while chunk := handle.read(8 * 1024 * 1024):
                joined = previous + chunk
                # a CR at the end of a chunk waits for the next: it may start a CRLF
                waits = joined.endswith(b"\r")
                alone = joined.replace(b"\r\n", b"")
                if b"\r" in (alone[:-1] if waits else alone):
                    return True
                previous = b"\r" if waits else b""
    except (OSError, EOFError) as exc:
        raise SourceFileError(f"{path.name} cannot be read: {exc}") from None
    return previous == b"\r"


def _normalise_newlines(path: Path, encoding: str, workdir: Path) -> Path:
    """Copy a text file with every line break (CRLF, CR, LF) made LF, streaming."""
    target = workdir / f"newlines-{uuid.uuid4().hex[:8]}.csv"
    codec = codecs.lookup(encoding).name
    try:
        with _open_source(path, "rt", encoding=codec, errors="surrogateescape",
                          newline=None) as src, \
                open(target, "w", encoding=codec, errors="surrogateescape", newline="") as dst:
            while chunk := src.read(8 * 1024 * 1024):
                dst.write(chunk)
    except (gzip.BadGzipFile, EOFError) as exc:
        raise _unreadable_gzip(path, exc) from None
    return target


def _transcode(path: Path, encoding: str, workdir: Path) -> Path:
    """Copy a file in an encoding DuckDB does not read natively to UTF-8, streaming."""
    target = workdir / f"transcoded-{uuid.uuid4().hex[:8]}.csv"
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    try:
        with _open_source(path) as src, \
                open(target, "w", encoding="utf-8", newline="") as dst:
            while chunk := src.read(8 * 1024 * 1024):
                dst.write(decoder.decode(chunk))
            dst.write(decoder.decode(b"", final=True))
    except (gzip.BadGzipFile, EOFError) as exc:
        raise _unreadable_gzip(path, exc) from None
    return target


@dataclass
class ArrowLanding:
    """Records already in memory (Excel), registered with DuckDB as an Arrow table."""

    columns: list[str]
    name: str
    file_format: str = "excel"
    encoding: str | None = None
    delimiter: str | None = None
    skipped: list[Reject] = field(default_factory=list)
    layout: FieldLayout | None = None
    faults: int = 0

    @classmethod
    def from_excel(cls, path: Path, sheet: str | None, con: duckdb.DuckDBPyConnection, *,
                   identifying: Sequence[str] = (), locations: Sequence[str] = ()
                   ) -> ArrowLanding:
        """The first (or the named) sheet. A row with values beyond the header's columns is
        quarantined as ``too_many_columns`` (those values would otherwise be dropped), with
        its text: its cells are in place, so identifying columns are withheld by position."""
        rows = read_excel_rows(path, sheet)
        if not rows:
            raise SourceFileError(f"sheet of {path.name} is empty: there is no header row")
        header = [_cell_text(v) or "" for v in rows[0]]
        while header and not header[-1]:  # the sheet's used area may be wider than the header
            header.pop()
        columns = unique_names(header)
        width = len(columns)
        data: list[list[str | None]] = [[] for _ in columns]
        faults: list[str | None] = []
        fields: list[list[str | None] | None] = []
        for row in rows[1:]:
            padded = list(row[:width]) + [None] * (width - len(row))
            for i, value in enumerate(padded):
                data[i].append(_cell_text(value))
            beyond = [_cell_text(v) for v in row[width:]]
            overflow = any(v not in (None, "") for v in beyond)
            faults.append(QuarantineReason.TOO_MANY_COLUMNS if overflow else None)
            fields.append([_cell_text(v) for v in padded] + beyond if overflow else None)
        n = len(rows) - 1
        table = pa.table({
            "_ord": pa.array(range(1, n + 1), pa.int64()),
            "_fault": pa.array(faults, pa.string()),
            "_fields": pa.array(fields, pa.list_(pa.string())),
            **{f"c{i}": pa.array(col, pa.string()) for i, col in enumerate(data)},
        })
        name = f"excel_{uuid.uuid4().hex[:8]}"
        con.register(name, table)
        layout = FieldLayout(columns, list(identifying), list(locations))
        return cls(columns, name, layout=layout, faults=sum(f is not None for f in faults))

    def scan(self, numbered: bool = True) -> str:
        cols = ", ".join(f"c{i} AS {_ident(c)}" for i, c in enumerate(self.columns))
        return f"(SELECT _ord, _fault, _fields, {cols} FROM {self.name})"

    def text_sql(self) -> str:
        if not self.faults or self.layout is None:
            return "NULL::VARCHAR"
        text = fields_text_sql("_fields", "0", self.layout, requote=True)
        return f"CASE WHEN _fields IS NOT NULL THEN {text} END"

    def rejects(self, con: duckdb.DuckDBPyConnection) -> list[Reject]:
        return list(self.skipped)


def read_excel_rows(path: Path, sheet: str | None) -> list[list[Any]]:
    """Rows of one sheet as Python values (dates as datetimes)."""
    try:
        from python_calamine import CalamineWorkbook
    except ImportError:  # pragma: no cover - depends on the install
        raise SourceFileError(
            "reading Excel needs the optional dependency: pip install 'cswb[excel]'"
        ) from None
    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own types for corrupt files
        raise SourceFileError(f"{path.name} is not a readable workbook: {exc}") from None
    names = list(workbook.sheet_names)
    if sheet is None:
        if len(names) != 1:
            raise SourceFileError(
                f"{path.name} has {len(names)} sheets ({', '.join(map(repr, names))}); "
                "name the one to read with file.sheet in the mapping"
            )
        sheet = names[0]
    if sheet not in names:
        raise SourceFileError(
            f"{path.name} has no sheet {sheet!r}; its sheets are {', '.join(map(repr, names))}"
        )
    return list(workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False))


def _cell_text(value: Any) -> str | None:
    """One cell as text: integral floats without '.0', dates as 'YYYY-MM-DD HH:MM:SS'."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date | time):
        return value.strftime(_cell_format(value))
    return str(value)


def _cell_format(value: datetime | date | time) -> str:
    if isinstance(value, datetime):  # before date: a datetime is a date
        return "%Y-%m-%d %H:%M:%S"
    return "%Y-%m-%d 00:00:00" if isinstance(value, date) else "%H:%M:%S"


class ParquetLanding:
    """A Parquet file; every column cast to VARCHAR."""

    file_format = "parquet"
    encoding: str | None = None
    delimiter: str | None = None

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        try:
            described = con.execute(
                f"DESCRIBE SELECT * FROM read_parquet({_lit(str(path))})"
            ).fetchall()
        except duckdb.Error as exc:
            raise SourceFileError(f"{path.name} is not a readable Parquet file: {exc}") from None
        self.columns = [row[0] for row in described]

    def scan(self, numbered: bool = True) -> str:
        cols = ", ".join(f"CAST({_ident(c)} AS VARCHAR) AS {_ident(c)}" for c in self.columns)
        return (f"(SELECT file_row_number + 1 AS _ord, NULL::VARCHAR AS _fault, "
                f"NULL::VARCHAR[] AS _fields, {cols} "
                f"FROM read_parquet({_lit(str(self.path))}, file_row_number = true))")

    def text_sql(self) -> str:
        return "NULL::VARCHAR"

    def rejects(self, con: duckdb.DuckDBPyConnection) -> list[Reject]:
        return []


class JsonLinesLanding:
    """One JSON object per line; a line that is not a JSON object is quarantined whole.

    Lines may end in LF, CRLF or CR, mixed within one file (a download resumed on another
    machine); blank lines are skipped. A line that is not valid JSON at all (for example the torn
    last line of an interrupted download) is quarantined as ``malformed_record`` like any other
    non-object line: JSON functions are only ever applied to lines already known to be valid.
    The columns are the keys of all objects; keys that SQL would confuse (differing only in
    case, blank) are renamed like repeated CSV header names (``Type``, ``type_2``).
    """

    file_format = "jsonl"
    encoding: str | None = "utf-8"
    delimiter: str | None = None

    _IS_OBJECT = "coalesce(CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' END, false)"
    """True for a line holding a JSON object; never evaluates ``json_type`` on invalid JSON."""

    def __init__(self, path: Path, max_line_bytes: int, con: duckdb.DuckDBPyConnection,
                 workdir: Path) -> None:
        # DuckDB's line reader drops the first byte of a line after a lone CR that follows
        # CRLF lines: such a file is read from a copy with LF line breaks
        self.path = _normalise_newlines(path, "utf-8", workdir) if _has_lone_cr(path) else path
        self.max_line_bytes = max_line_bytes
        self._tag = uuid.uuid4().hex[:8]
        keys = con.execute(
            f"SELECT DISTINCT unnest(json_keys(CASE WHEN {self._IS_OBJECT} THEN line END)) "
            f"FROM {self._lines()}"
        ).fetchall()
        self._keys = sorted(k for (k,) in keys)
        if not self._keys:
            raise SourceFileError(f"{path.name} holds no JSON objects")
        # SQL names are case-insensitive: keys differing only in case ("type", "Type"), blank
        # or padded keys get distinct column names, as a CSV header's would.
        self.columns = unique_names(self._keys)

    def _lines(self) -> str:
        # strict_mode = false lets the reader accept LF, CRLF and CR line ends in one file.
        return (
            f"read_csv({_lit(str(self.path))}, columns = {{'line': 'VARCHAR'}}, header = false, "
            f"auto_detect = false, delim = '\\x1f', quote = '', escape = '', strict_mode = false, "
            f"max_line_size = {self.max_line_bytes}, store_rejects = true, "
            f"rejects_table = 'rejects_{self._tag}', rejects_scan = 'rejects_scan_{self._tag}')"
        )

    def scan(self, numbered: bool = True) -> str:
        ok = self._IS_OBJECT
        cols = ", ".join(
            f"CASE WHEN {ok} THEN json_extract_string(line, {_lit(_json_path(key))}) END "
            f"AS {_ident(name)}"
            for key, name in zip(self._keys, self.columns, strict=True)
        )
        return (
            f"(SELECT ordinality AS _ord, CASE WHEN NOT {ok} THEN 'malformed_record' END "
            f"AS _fault, CASE WHEN NOT {ok} THEN [line] END AS _fields, {cols} "
            f"FROM {self._lines()} WITH ORDINALITY WHERE trim(line) <> '')"
        )

    def rejects(self, con: duckdb.DuckDBPyConnection) -> list[Reject]:
        table = f"rejects_{self._tag}"
        try:
            rows = con.execute(
                f"SELECT DISTINCT line, error_type::VARCHAR, {_scrub_sql('csv_line')} FROM {table} "
                f"WHERE scan_id = (SELECT max(scan_id) FROM {table}) ORDER BY line"
            ).fetchall()
        except duckdb.CatalogException:
            return []
        return [Reject(int(line), _REJECT_REASONS.get(t, QuarantineReason.MALFORMED_RECORD),
                       t, text or "") for line, t, text in rows]

    def text_sql(self) -> str:
        return _scrub_sql("_fields[1]")


def _json_path(key: str) -> str:
    return '$."' + re.sub(r'(["\\])', r"\\\1", key) + '"'
