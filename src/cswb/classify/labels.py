"""Labelled call-type files (CALL_TAXONOMY.md): ``city,call_type,count,category[,flags,note]``.

The same format holds training data, evaluation labels and analysts' overrides. Reading checks
every row and raises :class:`ClassifyError` naming the file, line and problem.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from cswb.classify.taxonomy import Taxonomy
from cswb.errors import ClassifyError, SourceFileError

LABEL_COLUMNS = ("city", "call_type", "count", "category")
OPTIONAL_COLUMNS = ("flags", "note")


@dataclass(frozen=True)
class LabelledType:
    """One labelled call type of one city."""

    city: str
    call_type: str
    count: int
    category: str
    flags: tuple[str, ...] = ()
    note: str = ""


def read_text_file(path: Path) -> str:
    """A text file's contents, UTF-8 (byte-order mark tolerated) or UTF-16 with its byte-order
    mark (as spreadsheets save "Unicode text"), or a clear error."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    try:
        text = data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceFileError(f"{path} is not {'UTF-16' if utf16 else 'UTF-8'} text (bad byte "
                              f"at position {exc.start}); save it as UTF-8") from None
    if not text.strip():
        raise SourceFileError(f"{path} is empty")
    return text


def read_csv_records(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str | None]]]]:
    """The header and the (line, row) records of a small CSV file (see :func:`read_text_file`).

    A malformed record (an unclosed quote, a stray quote in a field) or one with more fields
    than the header (its extra values would be lost) is a clear error naming its line; a
    record with fewer fields reads its missing trailing values as empty.
    """
    reader = csv.DictReader(io.StringIO(read_text_file(path), newline=""), strict=True,
                            restkey=_EXTRA)
    records = []
    try:
        header = list(reader.fieldnames or [])
        for row in reader:
            if row.get(_EXTRA):
                raise SourceFileError(f"{path} line {reader.line_num}: "
                                      f"{len(header) + len(row[_EXTRA])} fields where the "
                                      f"header has {len(header)}")
            records.append((reader.line_num, row))
    except csv.Error as exc:  # line_num counts the lines of the records read before it
        raise SourceFileError(f"{path}: the record starting at line {reader.line_num + 1} is "
                              f"malformed CSV ({exc})") from None
    return header, records


_EXTRA = "\x00extra"
"""Where the CSV reader puts the values of a record beyond the header's columns."""


def parse_flags(value: str | None, taxonomy: Taxonomy, where: str) -> tuple[str, ...]:
    """Flags joined by ``;`` checked against the taxonomy."""
    flags = sorted({f.strip() for f in (value or "").split(";") if f.strip()})
    unknown = [f for f in flags if f not in taxonomy.flag_codes]
    if unknown:
        raise ClassifyError(f"{where}: unknown flag(s) {', '.join(unknown)}; flags are "
                            f"{', '.join(taxonomy.flag_codes)}")
    return tuple(flags)


def read_labels(path: Path, taxonomy: Taxonomy) -> list[LabelledType]:
    """Every row of a labelled file, validated."""
    header, records = read_csv_records(path)
    missing = [c for c in LABEL_COLUMNS if c not in header]
    if missing:
        raise ClassifyError(f"{path}: missing column(s) {', '.join(missing)}; a labelled file "
                            f"has the header {','.join(LABEL_COLUMNS)}")
    out = [_labelled(row, taxonomy, f"{path} line {line}") for line, row in records]
    if not out:
        raise SourceFileError(f"{path} has a header but no rows")
    return out


def _labelled(row: dict[str, str | None], taxonomy: Taxonomy, where: str) -> LabelledType:
    call_type = (row.get("call_type") or "").strip()
    if not call_type:
        raise ClassifyError(f"{where}: empty call_type")
    category = (row.get("category") or "").strip()
    if category not in taxonomy.category_codes:
        raise ClassifyError(f"{where}: unknown category {category!r}")
    raw_count = (row.get("count") or "").strip() or "1"
    try:
        count = int(float(raw_count))
    except ValueError:
        raise ClassifyError(f"{where}: count {raw_count!r} is not a number") from None
    if count < 0:
        raise ClassifyError(f"{where}: count {count} is negative")
    return LabelledType((row.get("city") or "").strip(), call_type, count, category,
                        parse_flags(row.get("flags"), taxonomy, where),
                        (row.get("note") or "").strip())
