"""Generalising published locations to the hundred block (DATA_POLICY.md), as SQL."""

from __future__ import annotations

DEFAULT_STRIP: tuple[str, ...] = (
    r"\s+(APT|APARTMENT|UNIT|STE|SUITE|RM|ROOM|LOT|TRLR|FL|FLOOR)\.?\s*#?\s*[A-Z0-9-]+\b",
    r"\s*#\s*[A-Z0-9-]+\b",
)
"""Unit designators removed from every address: they point at one dwelling."""

_NUMBERED = r"^([0-9]+)(?:-?[A-Z]\b|-[0-9]+|\s*1/2)?\s+(.+)$"
_BLOCK_OF = r"^([0-9]*X+)\s+(?:BLOCK\s+OF\s+|BLK\s+)?(.+)$"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def clean_location_sql(expr: str, strip: list[str]) -> str:
    """SQL upper-casing a location, removing unit numbers and ``strip`` patterns."""
    cleaned = f"upper(trim({expr}))"
    for pattern in [*strip, *DEFAULT_STRIP]:
        cleaned = f"regexp_replace({cleaned}, {_lit('(?i)' + pattern)}, '', 'g')"
    return f"nullif(trim(regexp_replace({cleaned}, '\\s+', ' ', 'g')), '')"


def generalise_sql(column: str, keep_exact: bool = False) -> str:
    """SQL turning a cleaned location column into a hundred block, intersection or place name.

    ``5237 N 35TH ST`` becomes ``52XX N 35TH ST``; ``3XX BLOCK OF PINE ST`` becomes
    ``3XX PINE ST``; intersections (``A / B``, ``A & B``) and names without a house number are
    kept. ``column`` must already be cleaned by :func:`clean_location_sql`.
    """
    if keep_exact:
        return column
    return (
        f"CASE WHEN regexp_matches({column}, {_lit(_BLOCK_OF)}) "
        f"THEN regexp_replace({column}, {_lit(_BLOCK_OF)}, '\\1 \\2') "
        f"WHEN regexp_matches({column}, {_lit(_NUMBERED)}) "
        f"THEN CAST(TRY_CAST(regexp_extract({column}, {_lit(_NUMBERED)}, 1) AS HUGEINT) // 100 "
        f"AS VARCHAR) || 'XX ' || regexp_extract({column}, {_lit(_NUMBERED)}, 2) "
        f"ELSE {column} END"
    )
