"""Sniffing a text file's encoding, delimiter and header from its first bytes."""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from cswb.errors import SourceFileError

SAMPLE_BYTES = 256 * 1024
DELIMITER_CANDIDATES = (",", ";", "\t", "|")
NATIVE_ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16", "latin-1": "latin-1"}
"""Encodings DuckDB's CSV reader decodes itself; any other is transcoded to UTF-8 first."""

_ALIASES = {
    "utf8": "utf-8", "utf-8-sig": "utf-8", "utf_8": "utf-8", "utf16": "utf-16",
    "utf-16le": "utf-16", "utf-16be": "utf-16", "latin1": "latin-1", "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1", "windows-1252": "cp1252", "cp-1252": "cp1252",
}


@dataclass(frozen=True)
class Dialect:
    """What the sniffer found (or the mapping declared)."""

    encoding: str
    delimiter: str
    header: list[str]


def normalise_encoding(name: str) -> str:
    """Canonical name of an encoding, or :class:`SourceFileError` if Python does not know it."""
    lowered = name.strip().lower()
    lowered = _ALIASES.get(lowered, lowered)
    try:
        codecs.lookup(lowered)
    except LookupError:
        raise SourceFileError(f"unknown encoding {name!r}") from None
    return lowered


def sniff_encoding(sample: bytes) -> str:
    """utf-16 or utf-8 by byte-order mark, utf-8 if the sample decodes, else cp1252/latin-1."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def decode_sample(sample: bytes, encoding: str) -> str:
    """Decode the start of a file, tolerating a character cut at the end of the sample."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    return decoder.decode(sample, final=False).lstrip("\ufeff")


def sniff_delimiter(text: str, quote: str = '"') -> str:
    """The candidate delimiter that splits the first lines into the most, consistent fields."""
    lines = text.splitlines()[:50] or [""]
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]
    best, best_score = ",", (0, 0)
    for candidate in DELIMITER_CANDIDATES:
        counts = [len(row) for row in csv.reader(lines, delimiter=candidate, quotechar=quote)]
        if not counts:
            continue
        header = counts[0]
        consistent = sum(1 for c in counts if c == header)
        score = (consistent if header > 1 else 0, header)
        if score > best_score:
            best, best_score = candidate, score
    return best


def read_header(text: str, delimiter: str, quote: str = '"') -> list[str]:
    """Column names from the first record; blanks and repeats made unique."""
    # universal newlines: a file whose lines end in a lone CR has a header too
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=delimiter, quotechar=quote)
    try:
        raw = next(reader)
    except StopIteration:
        raise SourceFileError("the file is empty: there is no header row") from None
    except csv.Error as exc:
        raise SourceFileError(f"the header row cannot be parsed: {exc}") from None
    return unique_names(raw)


def unique_names(raw: list[str]) -> list[str]:
    """Strip names, name blanks ``column_<n>`` and suffix repeats ``_2``, ``_3``..."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(raw, start=1):
        base = name.strip() or f"column_{i}"
        count = seen.get(base.lower(), 0) + 1
        seen[base.lower()] = count
        names.append(base if count == 1 else f"{base}_{count}")
    return names


def sniff(path: Path, *, encoding: str = "auto", delimiter: str = "auto",
          quote: str = '"', header: bool = True,
          column_names: list[str] | None = None) -> Dialect:
    """Encoding, delimiter and header of a delimited text file."""
    with open(path, "rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    if not sample.strip():
        raise SourceFileError(f"{path.name} is empty")
    _refuse_non_text(path, sample, encoding)
    enc = sniff_encoding(sample) if encoding == "auto" else normalise_encoding(encoding)
    text = decode_sample(sample, enc)
    delim = sniff_delimiter(text, quote) if delimiter == "auto" else delimiter
    names = read_header(text, delim, quote) if header else unique_names(column_names or [])
    return Dialect(enc, delim, names)


_SIGNATURES = (
    (b"\x1f\x8b", "a gzip file: name it with .gz (calls.csv.gz) and cswb reads it"),
    (b"PK\x03\x04", "a zip archive or an Excel workbook: for a workbook set file.format: "
                    "excel (or name it .xlsx)"),
    (b"PAR1", "a Parquet file: set file.format: parquet (or name it .parquet)"),
    (b"%PDF", "a PDF document, not a data export"),
)


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13))


def _refuse_non_text(path: Path, sample: bytes, encoding: str) -> None:
    """A clear error for a file that is no delimited text in the declared encoding (binary,
    or UTF-16 declared as UTF-8), rather than a parser's complaint about its first line."""
    for magic, what in _SIGNATURES:
        if sample.startswith(magic):
            raise SourceFileError(f"{path.name} is {what}")
    has_bom = sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    zeros = sample.count(0) / len(sample)
    if zeros > 0.2 and not has_bom:
        raise SourceFileError(
            f"{path.name} is not text: {zeros:.0%} of its first bytes are zero (UTF-16 "
            "without a byte-order mark? set file.encoding: utf-16; or a binary file)")
    control = (len(sample) - len(sample.translate(None, _CONTROL))) / len(sample)
    if control > 0.05 and not has_bom:
        raise SourceFileError(
            f"{path.name} is not text: {control:.0%} of its first bytes are control "
            "characters (a binary or compressed file?)")
    if has_bom and encoding not in ("auto", "utf-16", "utf16", "utf-16le", "utf-16be"):
        raise SourceFileError(
            f"{path.name} is UTF-16 (it starts with a byte-order mark) but the mapping "
            f"declares file.encoding: {encoding}: declare utf-16 or auto")
