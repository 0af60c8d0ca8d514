"""The dashboard's view of disclosure control: which cells of a panel's table to hide.

The rules are the analytics package's (:mod:`cswb.analytics.disclosure`): primary suppression
of counts from 1 to ``threshold - 1``, and complementary suppression checked by linear
programming so that no hidden cell can be narrowed to less than ``threshold`` from the published
cells and margins. This module only adapts them to the panels' lists of counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cswb.analytics.disclosure import primary_cells, two_way


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


def hide_small(values: Sequence[int], threshold: int) -> list[bool]:
    """Primary suppression only: for counts that add up to no published figure (a call counts
    once under each of its flags, so flag counts have no total)."""
    return [bool(h) for h in primary_cells(np.asarray(values, dtype=np.int64), threshold)]


def suppress_one_way(values: Sequence[int], threshold: int) -> OneWay:
    """Cells of a one-way table published with its total."""
    if not values:
        return OneWay([], total_hidden=False)
    p = two_way(np.asarray(values, dtype=np.int64).reshape(-1, 1), tuple(range(len(values))),
                ("calls",), threshold)
    return OneWay([row[0] is None for row in p.cells], total_hidden=p.grand_total is None)


def suppress_grid(grid: Sequence[Sequence[int]], threshold: int) -> Grid:
    """Cells of a two-way table published with row and column totals (and the grand total)."""
    if not grid or not grid[0]:
        return Grid([], [], [])
    matrix = np.asarray(grid, dtype=np.int64)
    p = two_way(matrix, tuple(range(matrix.shape[0])), tuple(range(matrix.shape[1])), threshold)
    return Grid([[c is None for c in row] for row in p.cells],
                [t is None for t in p.row_totals], [t is None for t in p.col_totals])
