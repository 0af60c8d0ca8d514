"""Area populations for rates per 1,000 residents: a CSV of area (or name) and population."""

from __future__ import annotations

from pathlib import Path

from cswb.analytics.query import AnalyticsError
from cswb.errors import SourceFileError
from cswb.files import read_csv_records


def load_populations(path: Path) -> dict[str, int]:
    """Read ``area,population`` (or ``name,population``, as the synthetic city writes it).

    UTF-8 or UTF-16 with its byte-order mark; every row must name an area once and give it a
    positive whole number, or the file is refused with the line at fault.
    """
    try:
        fields, records = read_csv_records(path)
    except SourceFileError as exc:
        raise AnalyticsError(f"populations file: {exc}") from None
    key = "area" if "area" in fields else "name" if "name" in fields else None
    if key is None or "population" not in fields:
        raise AnalyticsError(f"populations file {path} needs columns area (or name) "
                             "and population")
    out: dict[str, int] = {}
    for line, row in records:
        area = (row.get(key) or "").strip()
        if not area:
            raise AnalyticsError(f"populations file {path}, line {line}: no {key}")
        if area in out:
            raise AnalyticsError(f"populations file {path}, line {line}: {area!r} is "
                                 "listed twice")
        out[area] = _count(row.get("population"), path, line)
    return out


def _count(text: str | None, path: Path, line: int) -> int:
    try:
        value = int((text or "").strip())
    except ValueError:
        raise AnalyticsError(f"populations file {path}, line {line}: population is not a "
                             "whole number") from None
    if value <= 0:
        raise AnalyticsError(f"populations file {path}, line {line}: population must be "
                             "positive")
    return value
