"""Batch classification of bare call types (``cswb classify calltypes IN.csv --output OUT.csv``).

IN has a ``call_type`` column and optionally ``city`` and ``count`` (any other columns are
carried through). OUT has one row per input row, in order: the input columns, then
``category,flags,confidence,decided_by,reason`` (flags joined by ``;``; ``reason`` explains an
``unknown`` and is empty otherwise).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cswb.classify.classifier import Classifier
from cswb.errors import SourceFileError
from cswb.files import atomic_write, read_csv_records

OUTPUT_COLUMNS = ("category", "flags", "confidence", "decided_by", "reason")


def classify_calltypes_file(classifier: Classifier, source: Path, output: Path) -> int:
    """Classify every row of ``source`` into ``output``; return the number of rows."""
    if output.exists() and output.resolve() == source.resolve():
        raise SourceFileError(f"{output} is the input file: write the output to another file")
    header, records = read_csv_records(source)
    if "call_type" not in header:
        hint = next((f"; the header looks delimited by {d!r}: save it comma-separated"
                     for d in (";", "\t", "|") if len(header) == 1 and d in header[0]), "")
        raise SourceFileError(f"{source}: no 'call_type' column (found: "
                              f"{', '.join(header) or 'nothing'}){hint}")
    clash = [c for c in OUTPUT_COLUMNS if c in header]
    if clash:
        raise SourceFileError(f"{source}: input already has output column(s) {', '.join(clash)}")
    rows = [row for _, row in records]
    if not rows:
        raise SourceFileError(f"{source} has a header but no rows")
    table = classifier.classify_types([r.get("call_type") or None for r in rows],
                                      [r.get("city") or None for r in rows])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*header, *OUTPUT_COLUMNS])
    for row, category, flags, confidence, decided_by, reason in zip(
            rows, table.column("category").to_pylist(), table.column("flags").to_pylist(),
            table.column("confidence").to_pylist(), table.column("decided_by").to_pylist(),
            table.column("unknown_reason").to_pylist(), strict=True):
        writer.writerow([*(row.get(c) or "" for c in header), category, ";".join(flags),
                         f"{confidence:.3f}", decided_by, reason or ""])
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceFileError(f"cannot create the folder of {output}: "
                              f"{exc.strerror or exc}") from None
    atomic_write(output, out.getvalue())
    return len(rows)
