"""Durable file writes shared by the store and the portal downloads, and the reading of the
small text and CSV files analysts hand to commands (labels, call types, populations)."""

from __future__ import annotations

import codecs
import csv
import io
import os
from pathlib import Path

import yaml

from cswb.errors import SourceFileError


def fsync_file(path: Path) -> None:
    """Flush a file's contents to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically: write, fsync, rename, fsync the folder.

    A symbolic link is followed (its target is replaced, not the link); anything but a
    regular file (a device such as ``/dev/stdout``, a folder) is refused rather than replaced,
    and a folder that cannot be written is a clear error.
    """
    if path.is_symlink():
        path = path.resolve()
    if path.exists() and not path.is_file():
        raise SourceFileError(f"{path} is not a regular file: write to a file path")
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SourceFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    fsync_dir(path.parent)


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
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    try:
        header = list(reader.fieldnames or [])
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:  # a dict keeps only the last column of a name: the others would be lost
            raise SourceFileError(f"{path}: the header repeats the column(s) {repeated}; "
                                  "give every column its own name")
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

_FIELD_LIMIT = 16 * 1024 * 1024
"""The longest field a small CSV may hold (Python's default, 128 KiB, refused a long value
as "malformed")."""


class _StrictLoader(yaml.SafeLoader):
    """The safe YAML loader, refusing a key given twice in one mapping (YAML's last-one-wins
    would silently drop the first: a rule's ``tier`` written twice)."""


def _no_repeated_keys(loader: _StrictLoader, node: yaml.MappingNode) -> dict[object, object]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark,
                f"the key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_repeated_keys)


def load_yaml(text: str) -> object:
    """Parse YAML written by people (mappings, policies): safe types only, no repeated keys.
    Raises :class:`yaml.YAMLError` (with the place) for either problem."""
    return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: safe types only
