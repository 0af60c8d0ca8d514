"""Small-cell suppression of the counts the dashboard and the report publish.

This is the web layer's own, conservative rule set, used until the analytics package's
disclosure module (``cswb.analytics.disclosure``, built on another branch) is merged; the pages
call only :func:`suppress_one_way`, :func:`suppress_grid` and :func:`hide_small`, so switching
is a change of import.

* **Primary**: a count from 1 to ``threshold - 1`` is suppressed (a zero is shown: it names no
  one).
* **Complementary**: a group whose total is published (a one-way table with its total, each row
  and column of a grid with its margins) must never have exactly one suppressed cell, or the
  cell would be the total minus the others. The smallest other non-zero cell is suppressed as
  well; when there is none, the group's total is suppressed instead. Grid rows and columns are
  revisited until no group has a lone suppressed cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class OneWay:
    """Which cells of a one-way table are suppressed, and whether its total is."""

    hidden: list[bool]
    total_hidden: bool


@dataclass(frozen=True)
class Grid:
    """Which cells of a two-way table, and which of its margins, are suppressed."""

    hidden: list[list[bool]]
    row_total_hidden: list[bool]
    column_total_hidden: list[bool]


def is_small(value: int, threshold: int) -> bool:
    """A count that primary suppression hides."""
    return 0 < value < threshold


def hide_small(values: Sequence[int], threshold: int) -> list[bool]:
    """Primary suppression only: for counts that do not add up to any published figure (a call
    counts once under each of its flags, so flag counts have no total)."""
    return [is_small(v, threshold) for v in values]


def _protect(values: Sequence[int], hidden: list[bool]) -> bool:
    """Make the group safe against subtraction from its total; False when the total must go."""
    if sum(hidden) != 1:
        return True
    candidates = [i for i, v in enumerate(values) if not hidden[i] and v > 0]
    if not candidates:
        return False
    hidden[min(candidates, key=lambda i: (values[i], i))] = True
    return True


def suppress_one_way(values: Sequence[int], threshold: int) -> OneWay:
    """Cells of a one-way table published with its total."""
    hidden = hide_small(values, threshold)
    keep_total = _protect(values, hidden)
    return OneWay(hidden, total_hidden=not keep_total)


def suppress_grid(grid: Sequence[Sequence[int]], threshold: int) -> Grid:
    """Cells of a two-way table published with row and column totals (and the grand total)."""
    rows, cols = len(grid), len(grid[0]) if grid else 0
    hidden = [[is_small(v, threshold) for v in row] for row in grid]
    row_total_hidden, col_total_hidden = [False] * rows, [False] * cols
    changed = True
    while changed:
        before = sum(map(sum, hidden))
        for r in range(rows):
            row_total_hidden[r] = row_total_hidden[r] or not _protect(grid[r], hidden[r])
        for c in range(cols):
            column = [grid[r][c] for r in range(rows)]
            flags = [hidden[r][c] for r in range(rows)]
            col_total_hidden[c] = col_total_hidden[c] or not _protect(column, flags)
            for r in range(rows):
                hidden[r][c] = flags[r]
        changed = sum(map(sum, hidden)) != before
    return Grid(hidden, row_total_hidden, col_total_hidden)
