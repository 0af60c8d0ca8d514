"""Analysts' overrides: a labelled CSV whose rows win over rules and the model.

An override is keyed by (source, raw call type), compared in lower case with surrounding
spaces removed (:func:`cswb.classify.labels.label_key`), so ``cswb classify override`` and the
classifier agree on what a key is. The file is rewritten atomically on every change, and its
content is part of the classifier's version so a store can re-classify what an override
changed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

from cswb.classify.labels import LabelledType, label_key, parse_flags, read_labels
from cswb.classify.taxonomy import Taxonomy
from cswb.errors import ClassifyError
from cswb.files import atomic_write

OVERRIDE_COLUMNS = ("city", "call_type", "count", "category", "flags", "note")


def read_overrides(path: Path, taxonomy: Taxonomy) -> list[LabelledType]:
    """The overrides in ``path``; an absent file means no overrides."""
    if not path.exists():
        return []
    return read_labels(path, taxonomy)


def set_override(path: Path, taxonomy: Taxonomy, *, source: str, call_type: str, category: str,
                 flags: str | None = None, note: str | None = None) -> LabelledType:
    """Add or replace the override of (source, call type); write the file atomically."""
    if category not in taxonomy.category_codes:
        raise ClassifyError(f"unknown category {category!r}; categories are "
                            f"{', '.join(taxonomy.category_codes)}")
    if not call_type.strip():
        raise ClassifyError("an override needs a non-empty call type")
    entry = LabelledType(source.strip(), call_type.strip(), 0, category,
                         parse_flags(flags, taxonomy, "--flags"), (note or "").strip())
    rows = read_overrides(path, taxonomy)
    key = label_key(source, call_type)
    kept = [r for r in rows if label_key(r.city, r.call_type) != key]
    previous = [r for r in rows if label_key(r.city, r.call_type) == key]
    if previous:
        entry = replace(entry, count=previous[0].count)
    kept.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, overrides_csv(kept))
    return entry


def overrides_csv(rows: list[LabelledType]) -> str:
    """The CSV text of a list of overrides."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(OVERRIDE_COLUMNS)
    for r in rows:
        writer.writerow([r.city, r.call_type, r.count, r.category, ";".join(r.flags), r.note])
    return out.getvalue()
