"""Area populations for rates per 1,000 residents: a CSV of area (or name) and population."""

from __future__ import annotations

import csv
from pathlib import Path

from cswb.analytics.query import AnalyticsError


def load_populations(path: Path) -> dict[str, int]:
    """Read ``area,population`` (or ``name,population``, as the synthetic city writes it)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            key = "area" if "area" in fields else "name" if "name" in fields else None
            if key is None or "population" not in fields:
                raise AnalyticsError(f"populations file {path} needs columns area (or name) "
                                     "and population")
            return {row[key]: _count(row["population"], path, n)
                    for n, row in enumerate(reader, 2)}
    except OSError as exc:
        raise AnalyticsError(f"populations file {path} cannot be read: "
                             f"{exc.strerror}") from None


def _count(text: str, path: Path, line: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise AnalyticsError(f"populations file {path}, line {line}: population is not a "
                             "whole number") from None
    if value <= 0:
        raise AnalyticsError(f"populations file {path}, line {line}: population must be "
                             "positive")
    return value
