"""Small typed result tables: what every metric returns and the API and reports show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricTable:
    """A metric's result: named columns, rows, and whether it is meant for publication.

    A ``public`` table holds counts of calls that :mod:`cswb.analytics.disclosure` must
    suppress before it leaves the analytic zone; a table that is not public is for analysts of
    member agencies only. ``notes`` say how to read it (usable rows, excluded rows, tests).
    """

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    public: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def column(self, name: str) -> list[Any]:
        """The values of one column."""
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def as_dicts(self) -> list[dict[str, Any]]:
        """The rows as dictionaries keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]
