"""Generalising published locations to the hundred block (DATA_POLICY.md), as SQL.

Written for speed at ten million rows: cheap anchored matches guard every rewrite, and no
regular expression with capture groups runs per row.
"""

from __future__ import annotations

UNIT_WORDS = r"APT|APARTMENT|UNIT|STE|SUITE|RM|ROOM|LOT|TRLR|FL|FLOOR"
_UNIT_GUARD = rf"[\s,]({UNIT_WORDS})\b|#"
_UNIT = rf"[\s,]+({UNIT_WORDS})\.?\s*#?\s*[A-Z0-9-]+\b|[\s,]*#\s*[A-Z0-9-]+\b"
"""Unit designators, removed from every address: they point at one dwelling."""

_BLOCK = r"^[0-9]*X+ "
_NUMBERED = r"^[0-9]{1,9}(-?[A-Z]|-[0-9]+)? "


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def clean_location_sql(expr: str, strip: list[str]) -> str:
    """SQL: upper-cased, ``strip`` patterns and unit numbers removed, spaces collapsed,
    stray separators trimmed (``2522 N 48TH ST, APT 6`` becomes ``2522 N 48TH ST``)."""
    cleaned = f"upper(trim({expr}))"
    for pattern in strip:
        cleaned = f"regexp_replace({cleaned}, {_lit('(?i)' + pattern)}, '', 'g')"
    return (
        f"nullif(trim(regexp_replace(CASE WHEN regexp_matches({cleaned}, {_lit(_UNIT_GUARD)}) "
        f"THEN regexp_replace({cleaned}, {_lit(_UNIT)}, '', 'g') ELSE {cleaned} END, "
        f"'\\s\\s+', ' ', 'g'), ' ,;'), '')"
    )


def generalise_sql(column: str, keep_exact: bool = False) -> str:
    """SQL turning a cleaned location into a hundred block, intersection or place name.

    ``5237 N 35TH ST`` becomes ``52XX N 35TH ST`` (``37 ELM ST``: ``0XX ELM ST``);
    ``3XX BLOCK OF PINE ST`` becomes ``3XX PINE ST``; intersections (``A / B``) and names without
    a house number are kept. ``column`` must already be cleaned by :func:`clean_location_sql`.
    """
    if keep_exact:
        return column
    c = column
    return (
        f"CASE WHEN regexp_matches({c}, {_lit(_BLOCK)}) THEN "
        f"CASE WHEN contains({c}, ' BLOCK OF ') OR contains({c}, ' BLK ') "
        f"THEN regexp_replace({c}, ' (BLOCK OF|BLK) ', ' ') ELSE {c} END "
        f"WHEN regexp_matches({c}, {_lit(_NUMBERED)}) THEN "
        f"CAST(CAST(regexp_extract({c}, '^[0-9]+') AS BIGINT) // 100 AS VARCHAR) || 'XX ' || "
        f"substr({c}, strpos({c}, ' ') + 1) "
        f"ELSE {c} END"
    )
