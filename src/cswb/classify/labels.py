"""Labelled call-type files (CALL_TAXONOMY.md): ``city,call_type,count,category[,flags,note]``.

The same format holds training data, evaluation labels and analysts' overrides. Reading checks
every row and raises :class:`ClassifyError` naming the file, line and problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cswb.classify.taxonomy import Taxonomy
from cswb.errors import ClassifyError, SourceFileError
from cswb.files import read_csv_records

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
    out = [(line, _labelled(row, taxonomy, f"{path} line {line}")) for line, row in records]
    if not out:
        raise SourceFileError(f"{path} has a header but no rows")
    _refuse_conflicts(path, out)
    return [label for _, label in out]


def label_key(city: str | None, call_type: str | None) -> str:
    """The key under which a (city or source, raw call type) pair is one labelled type:
    surrounding spaces removed and lower case, as the classifier's vectorised lookup compares."""
    return f"{(city or '').strip().lower()}\x1f{(call_type or '').strip().lower()}"


def _refuse_conflicts(path: Path, labelled: list[tuple[int, LabelledType]]) -> None:
    """A clear error when one call type of one city is labelled twice differently: an
    evaluation would count one of them wrong whatever the classifier said, and of two
    overrides only one can win."""
    first: dict[str, tuple[int, LabelledType]] = {}
    for line, label in labelled:
        earlier = first.setdefault(label_key(label.city, label.call_type), (line, label))
        if (earlier[1].category, earlier[1].flags) != (label.category, label.flags):
            city = f" of {label.city}" if label.city else ""
            raise ClassifyError(
                f"{path}: lines {earlier[0]} and {line} label {label.call_type!r}{city} "
                f"differently ({_describe(earlier[1])}; {_describe(label)}): keep one")


def _describe(label: LabelledType) -> str:
    return label.category + (f" with {';'.join(label.flags)}" if label.flags else "")


def require_volume(labels: list[LabelledType], path: Path) -> list[LabelledType]:
    """``labels``, or a clear error when their counts add up to no call (nothing to weigh)."""
    if not any(label.count for label in labels):
        raise ClassifyError(f"{path}: every count is 0: there are no calls to weigh")
    return labels


def _labelled(row: dict[str, str | None], taxonomy: Taxonomy, where: str) -> LabelledType:
    call_type = (row.get("call_type") or "").strip()
    if not call_type:
        raise ClassifyError(f"{where}: empty call_type")
    category = (row.get("category") or "").strip()
    if category not in taxonomy.category_codes:
        raise ClassifyError(f"{where}: unknown category {category!r}")
    raw_count = (row.get("count") or "").strip() or "1"  # no count: one call
    if not re.fullmatch(r"-?[0-9]{1,15}", raw_count, flags=re.ASCII):
        raise ClassifyError(f"{where}: count {raw_count!r} is not a whole number of calls")
    count = int(raw_count)
    if count < 0:
        raise ClassifyError(f"{where}: count {count} is negative")
    return LabelledType((row.get("city") or "").strip(), call_type, count, category,
                        parse_flags(row.get("flags"), taxonomy, where),
                        (row.get("note") or "").strip())
