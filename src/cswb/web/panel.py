"""A panel: one chart and the table it draws, already suppressed, ready for HTML and CSV.

A panel's rows are what is published: a suppressed count is the string :data:`SUPPRESSED` in
the table, the CSV and the chart (where it is left out). The table view and the CSV are written
from the same cells by :func:`display` and :func:`plain`, so they cannot disagree.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

SUPPRESSED = "suppressed"
"""What a published table shows instead of a suppressed value."""

Kind = Literal["text", "count", "share", "minutes", "rate", "ratio"]


@dataclass(frozen=True)
class Column:
    """A column of a panel's table: its CSV name, its heading and how values are written."""

    key: str
    heading: str
    kind: Kind = "count"

    @property
    def numeric(self) -> bool:
        return self.kind != "text"


@dataclass(frozen=True)
class Panel:
    """A chart (a Plotly figure, or an SVG drawn by cswb) with its table and notes."""

    id: str
    title: str
    summary: str
    """Text alternative of the chart: what it shows and its main finding, in a sentence."""
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    figure: dict[str, Any] | None = None
    svg: str | None = None
    notes: list[str] = field(default_factory=list)
    suppressed: int = 0
    """How many published cells are suppressed."""

    @property
    def empty(self) -> bool:
        return not self.rows

    def display_rows(self) -> list[list[str]]:
        return [[display(c, v) for c, v in zip(self.columns, row, strict=True)]
                for row in self.rows]

    def csv_text(self) -> str:
        """The table as CSV (header of column keys; suppressed cells say so)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.key for c in self.columns])
        for row in self.rows:
            writer.writerow([plain(c, v) for c, v in zip(self.columns, row, strict=True)])
        return out.getvalue()


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters a spreadsheet reads as the start of a formula (OWASP, CSV injection)."""


def spreadsheet_safe(text: str) -> str:
    """``text`` as a spreadsheet shows it: a leading apostrophe on text a spreadsheet would
    otherwise evaluate. Text cells come from agencies' exports (a call type, an area, a
    location) and may hold anything, including ``=HYPERLINK(...)``; Seattle's call types
    start with ``--``, which a spreadsheet shows as an error unless quoted so."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def plain(column: Column, value: Any) -> str:
    """A cell as the CSV writes it: no separators, shares in percent with one decimal, text
    safe to open in a spreadsheet."""
    if value is None:
        return ""
    if value == SUPPRESSED or column.kind == "text":
        return spreadsheet_safe(str(value))
    if column.kind == "count":
        return str(int(value))
    if column.kind == "share":
        return f"{100 * value:.1f}"
    if column.kind == "ratio":
        return f"{value:.3f}"
    return f"{value:.1f}"


def display(column: Column, value: Any) -> str:
    """A cell as the table view shows it: thousands separators, ``%`` after a share."""
    if value is None:
        return "-"
    if column.kind == "text":
        return str(value)  # escaped by the page; the apostrophe is only for spreadsheets
    text = plain(column, value)
    if value == SUPPRESSED or column.kind == "ratio":
        return text
    if column.kind == "count":
        return f"{int(value):,}"
    if column.kind == "share":
        return text + "%"
    return f"{value:,.1f}"


def published(values: Sequence[Any], hidden: Sequence[bool]) -> list[Any]:
    """``values`` with the hidden ones replaced by :data:`SUPPRESSED`."""
    return [SUPPRESSED if h else v for v, h in zip(values, hidden, strict=True)]


def chartable(values: Sequence[Any]) -> list[Any]:
    """Values for a chart: suppressed ones become gaps."""
    return [None if v == SUPPRESSED else v for v in values]
