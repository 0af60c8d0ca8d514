"""Disclosure control for published tables: small-cell and complementary suppression.

A published count table is a set of cells tied by additive lines: each row, each column, and
the margins add up to their totals. An attacker who knows those lines can solve for hidden
cells, so hiding the small ones is not enough. The protection criterion here:

    for every suppressed cell (a small one, or one hidden to protect it), the smallest and
    largest values it can take, given every published cell and margin, the additive lines and
    non-negative counts, are at least ``threshold`` apart (``hi - lo >= threshold``).

That bound is what a linear programme over the published table finds, so that is how it is
checked: :func:`protect` suppresses the cells with ``0 < count < threshold`` (primary), adds the
fewest cheap complements line by line until every line with a hidden cell has two or more hidden
members and its hidden parts add up to at least the threshold, then solves for each hidden cell's
bounds with ``scipy.optimize.linprog`` and hides one more cell in a line of any cell still too
narrow, until none is. Hiding a cell only loosens the programme, so a cell that passed stays
passed and the loop ends (at worst with everything hidden).

Zeros are published: a zero reveals no one, and an empty cell is often the point of a table (no
calls of that kind there). A zero cell is chosen as a complement only when no positive cell in the
line is left to hide, because hiding a zero widens nothing on its own.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linprog

from cswb.analytics.query import AnalyticsError
from cswb.analytics.tables import MetricTable

Line = tuple[int, tuple[int, ...]]
"""An additive line: the index of a total and the indices of the parts that add up to it."""

TOTAL = "total"
"""Label of the margins in a published table."""


def primary_cells(values: np.ndarray, threshold: int) -> np.ndarray:
    """Cells that are small but not zero: ``0 < count < threshold``."""
    return (values > 0) & (values < threshold)


WidthHint = Callable[[np.ndarray, np.ndarray, int, int], float | None]
"""The feasible width of a hidden cell (values, hidden, cell, threshold), exact below the
threshold and at least the threshold otherwise; None when unknown."""


def protect(values: np.ndarray, lines: list[Line], threshold: int,
            exact: WidthHint | None = None) -> np.ndarray:
    """Which cells to hide so that every hidden cell stays ``threshold`` wide (see above).

    ``exact`` may give a cell's width without a linear programme (see :func:`_exact_width`);
    where it gives None, the programme is solved."""
    if threshold < 1:
        raise AnalyticsError("the suppression threshold must be at least 1")
    values = np.asarray(values, dtype=np.int64)
    hidden = primary_cells(values, threshold)
    _complete_lines(values, lines, hidden, threshold)
    wide_enough: set[int] = set()  # hiding more only widens, so a cell that passed stays so
    while True:
        narrow = None
        for k in (int(i) for i in np.flatnonzero(hidden) if int(i) not in wide_enough):
            if _width(values, lines, hidden, k, exact=exact, threshold=threshold) < threshold:
                narrow = k
                break
            wide_enough.add(k)
        if narrow is None:
            return hidden
        extra = _complement_for(values, lines, hidden, narrow)
        if extra is None:
            return hidden
        hidden[extra] = True
        _complete_lines(values, lines, hidden, threshold)


def _complete_lines(values: np.ndarray, lines: list[Line], hidden: np.ndarray,
                    threshold: int) -> None:
    """Hide cheap complements until every line with a hidden member is protected on its own."""
    changed = True
    while changed:
        changed = False
        for total, parts in lines:
            members = (total, *parts)
            hidden_members = [m for m in members if hidden[m]]
            if not hidden_members:
                continue
            hidden_sum = sum(int(values[p]) for p in parts if hidden[p])
            enough = len(hidden_members) >= 2 and (hidden[total] or hidden_sum >= threshold)
            if enough:
                continue
            pick = _cheapest(values, [p for p in parts if not hidden[p]]) or (
                None if hidden[total] else total)
            if pick is not None:
                hidden[pick] = True
                changed = True


def _cheapest(values: np.ndarray, candidates: list[int]) -> int | None:
    """The smallest positive candidate, else a zero one, else None."""
    if not candidates:
        return None
    positive = [c for c in candidates if values[c] > 0]
    pool = positive or candidates
    return min(pool, key=lambda c: (int(values[c]), c))


def _complement_for(values: np.ndarray, lines: list[Line], hidden: np.ndarray,
                    cell: int) -> int | None:
    """A published cell to hide so that ``cell`` gains room: in its lines first."""
    near = sorted({m for total, parts in lines if cell == total or cell in parts
                   for m in (total, *parts) if not hidden[m]})
    anywhere = [int(i) for i in np.flatnonzero(~hidden)]
    return _cheapest(values, near) if near else _cheapest(values, anywhere)


def _width(values: np.ndarray, lines: list[Line], hidden: np.ndarray, cell: int, *,
           exact: WidthHint | None, threshold: int) -> float:
    known = exact(values, hidden, cell, threshold) if exact else None
    if known is not None:
        return known
    low, high = feasible_bounds(values, lines, hidden, cell)
    return high - low


def feasible_bounds(values: np.ndarray, lines: list[Line], hidden: np.ndarray,
                    cell: int) -> tuple[float, float]:
    """Smallest and largest value of ``cell`` consistent with the published cells and lines."""
    unknown = [int(i) for i in np.flatnonzero(hidden)]
    column = {cell_index: j for j, cell_index in enumerate(unknown)}
    rows, rhs = [], []
    for total, parts in lines:
        coeffs = [(total, -1.0)] + [(p, 1.0) for p in parts]
        if not any(hidden[i] for i, _ in coeffs):
            continue
        row = np.zeros(len(unknown))
        known = 0.0
        for i, c in coeffs:
            if hidden[i]:
                row[column[i]] += c
            else:
                known += c * float(values[i])
        rows.append(row)
        rhs.append(-known)
    objective = np.zeros(len(unknown))
    objective[column[cell]] = 1.0
    a_eq = np.array(rows) if rows else None
    b_eq = np.array(rhs) if rows else None
    low = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    high = linprog(-objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    lo = float(low.fun) if low.status == 0 else 0.0
    hi = -float(high.fun) if high.status == 0 else math.inf
    return lo, hi


@dataclass(frozen=True)
class ProtectedTable:
    """A one- or two-way count table with margins, after suppression (None = hidden)."""

    row_labels: tuple[Any, ...]
    col_labels: tuple[Any, ...]
    cells: list[list[int | None]]
    row_totals: list[int | None]
    col_totals: list[int | None]
    grand_total: int | None
    hidden_primary: int
    hidden_complementary: int
    threshold: int


def two_way(matrix: np.ndarray, row_labels: tuple[Any, ...], col_labels: tuple[Any, ...],
            threshold: int) -> ProtectedTable:
    """Protect a two-way table with its row, column and grand totals. A single column is a
    one-way table: its cells and their total (its row totals are its cells)."""
    counts = np.asarray(matrix, dtype=np.int64)
    n_rows, n_cols = counts.shape
    values, lines = layout(counts)
    hidden = protect(values, lines, threshold, _exact_width(n_rows, n_cols))
    shown: list[int | None] = [None if h else int(v) for v, h in zip(values, hidden, strict=True)]
    cells = [shown[r * n_cols:(r + 1) * n_cols] for r in range(n_rows)]
    base = n_rows * n_cols
    primary = int(primary_cells(values, threshold).sum())
    if n_cols == 1:
        row_totals, col_totals = shown[:base], [shown[-1]]
    else:
        row_totals = shown[base:base + n_rows]
        col_totals = shown[base + n_rows:base + n_rows + n_cols]
    return ProtectedTable(row_labels, col_labels, cells, row_totals, col_totals, shown[-1],
                          primary, int(hidden.sum()) - primary, threshold)


def layout(counts: np.ndarray) -> tuple[np.ndarray, list[Line]]:
    """The cells of a table (row by row), then for two or more columns its row totals and
    column totals, and last the grand total, as one vector, with the additive lines tying them."""
    n_rows, n_cols = counts.shape
    base = n_rows * n_cols
    if n_cols == 1:
        return (np.concatenate([counts.ravel(), [counts.sum()]]),
                [(base, tuple(range(base)))])
    row_total = [base + r for r in range(n_rows)]
    col_total = [base + n_rows + c for c in range(n_cols)]
    grand = base + n_rows + n_cols
    values = np.concatenate([counts.ravel(), counts.sum(axis=1), counts.sum(axis=0),
                             [counts.sum()]])
    lines: list[Line] = [(row_total[r], tuple(r * n_cols + c for c in range(n_cols)))
                         for r in range(n_rows)]
    lines += [(col_total[c], tuple(r * n_cols + c for r in range(n_rows)))
              for c in range(n_cols)]
    lines += [(grand, tuple(row_total)), (grand, tuple(col_total))]
    return values, lines


def _exact_width(n_rows: int, n_cols: int) -> WidthHint:
    """The exact feasible width of any hidden entry by network flow instead of two linear
    programmes.

    One column: calls can only move between the cell and the other hidden cells (or, when the
    total is hidden, in and out with it), so the width is the cell plus all of them (or
    unbounded; a lone hidden part is pinned by a published total); a hidden total is unbounded
    when a part is hidden with it, else pinned.
    Two-way: the table with its margins is a circulation (source → row: row total,
    row → column: cell, column → sink: column total, sink → source: grand total), and any change
    that keeps the published entries is a circulation on the arcs of the hidden ones (forward: an
    increase, unbounded; backward: a decrease, at most the entry's count). An entry can grow by
    the maximum flow from its arc's head back to its tail, and shrink by the maximum flow from
    tail to head (at most its count). The flows stop at the threshold: only whether the width
    reaches it matters.
    """
    base = n_rows * n_cols
    arcs = _arcs(n_rows, n_cols)
    cache: dict[bytes, _Residual] = {}

    def width(values: np.ndarray, hidden: np.ndarray, k: int, limit: int) -> float | None:
        if n_cols == 1:
            hidden_parts = hidden[:base]
            if k == base:  # the total: free exactly when some part is hidden with it
                return math.inf if hidden_parts.any() else 0.0
            if hidden[base]:
                return math.inf
            alone = hidden_parts.sum() == 1  # the published total pins a lone hidden part
            return 0.0 if alone else float(values[:base][hidden_parts].sum())
        key = hidden.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = _Residual(values, hidden, arcs)
        return cache[key].width(k, limit)

    return width


def _arcs(n_rows: int, n_cols: int) -> list[tuple[int, int]]:
    """(tail, head) of each entry of :func:`layout`'s vector (nodes: source 0, rows, columns,
    sink)."""
    source, sink = 0, 1 + n_rows + n_cols
    arcs = [(1 + r, 1 + n_rows + c) for r in range(n_rows) for c in range(n_cols)]
    arcs += [(source, 1 + r) for r in range(n_rows)]
    arcs += [(1 + n_rows + c, sink) for c in range(n_cols)]
    arcs.append((sink, source))
    return arcs


class _Residual:
    """Residual capacities of the hidden entries' arcs, built once per set of hidden entries."""

    def __init__(self, values: np.ndarray, hidden: np.ndarray,
                 arcs: list[tuple[int, int]]) -> None:
        self.values, self.arcs = values, arcs
        self.unbounded = 1 << 62  # an increase has no bound of its own; flows stop at the limit
        self.cap: dict[int, dict[int, int]] = {}
        for i in np.flatnonzero(hidden):
            self._add(int(i), 1)

    def _add(self, entry: int, sign: int) -> None:
        tail, head = self.arcs[entry]
        forward = self.cap.setdefault(tail, {})
        backward = self.cap.setdefault(head, {})
        forward[head] = forward.get(head, 0) + sign * self.unbounded
        backward[tail] = backward.get(tail, 0) + sign * int(self.values[entry])

    def width(self, k: int, limit: int) -> float:
        """The entry's feasible width when below ``limit``; else a number at least ``limit``."""
        self._add(k, -1)
        try:
            tail, head = self.arcs[k]
            grow = _max_flow(self.cap, head, tail, limit)
            if grow >= limit:
                return float(grow)
            shrink = _max_flow(self.cap, tail, head, limit - grow)
            return float(grow + min(int(self.values[k]), shrink))
        finally:
            self._add(k, 1)


def _max_flow(capacity: dict[int, dict[int, int]], source: int, sink: int, limit: int) -> int:
    """Maximum flow from ``source`` to ``sink``, stopping once it reaches ``limit``
    (Edmonds-Karp on a copy of the capacities: shortest augmenting paths first)."""
    cap = {node: dict(out) for node, out in capacity.items()}
    flow = 0
    while flow < limit:
        parent = _shortest_path(cap, source, sink)
        if parent is None:
            break
        path, node = [], sink
        while node != source:
            path.append((parent[node], node))
            node = parent[node]
        push = min(limit - flow, *(cap[a][b] for a, b in path))
        for a, b in path:
            cap[a][b] -= push
            cap.setdefault(b, {})[a] = cap[b].get(a, 0) + push
        flow += push
    return flow


def _shortest_path(cap: dict[int, dict[int, int]], source: int, sink: int
                   ) -> dict[int, int] | None:
    parent = {source: source}
    queue = deque([source])
    while queue:
        node = queue.popleft()
        for nxt, c in cap.get(node, {}).items():
            if c > 0 and nxt not in parent:
                parent[nxt] = node
                if nxt == sink:
                    return parent
                queue.append(nxt)
    return None


def publish(table: MetricTable, threshold: int) -> MetricTable:
    """The public form of a public table: small cells and their complements hidden (None).

    One-way tables (a key, ``calls``, and columns derived from calls such as ``share`` or
    ``per_1000``) get a ``total`` row; two-way tables (two keys and ``calls``) get row, column
    and grand totals. A flag table's cells do not add up (a call may carry several flags), so
    each of its cells is only primary-suppressed.
    """
    if not table.public:
        raise AnalyticsError(f"table {table.name} is not meant for publication")
    if "calls" not in table.columns:
        raise AnalyticsError(f"table {table.name} has no calls column to protect")
    keys = table.columns[:table.columns.index("calls")]
    if len(keys) == 2:
        return _publish_two_way(table, threshold)
    if keys == ("flag",):
        return _publish_independent(table, threshold)
    return _publish_one_way(table, threshold)


def publish_durations(table: MetricTable, threshold: int) -> MetricTable:
    """The public form of a duration table (:func:`cswb.analytics.metrics.durations`).

    Its ``calls`` are protected like any one-way table's (small cells and their complements
    hidden); ``usable`` is hidden with them and wherever it is below ``threshold``; the
    percentiles are hidden wherever they rest on fewer than ``threshold`` usable calls. The
    dashboard and the API publish response and on-scene times by this one rule.
    """
    calls = table.column("calls")
    labels = tuple(table.column(table.columns[0]))
    protected = two_way(np.array(calls, dtype=np.int64).reshape(-1, 1), labels, ("calls",),
                        threshold)
    rows = []
    for cells, (key, n, usable, *percentiles) in zip(protected.cells, table.rows, strict=True):
        hidden = cells[0] is None
        few = usable < threshold
        rows.append((key, None if hidden else n,
                     None if hidden or 0 < usable < threshold else usable,
                     *([None] * len(percentiles) if few else percentiles)))
    notes = {**table.notes, "suppressed": sum(c[0] is None for c in protected.cells),
             "threshold": threshold}
    return MetricTable(table.name, table.columns, rows, public=True, notes=notes)


def _publish_one_way(table: MetricTable, threshold: int) -> MetricTable:
    calls = table.column("calls")
    labels = tuple(table.column(table.columns[0]))
    protected = two_way(np.array(calls, dtype=np.int64).reshape(-1, 1), labels, ("calls",),
                        threshold)
    rows = [row if protected.cells[i][0] is not None else _blank(table, row)
            for i, row in enumerate(table.rows)]
    total_row = _total_row(table, protected.grand_total)
    return _protected_copy(table, [*rows, total_row], protected)


def _publish_two_way(table: MetricTable, threshold: int) -> MetricTable:
    k1, k2 = table.columns[0], table.columns[1]
    row_labels = tuple(sorted(set(table.column(k1)), key=str))
    col_labels = tuple(sorted(set(table.column(k2)), key=str))
    matrix = np.zeros((len(row_labels), len(col_labels)), dtype=np.int64)
    r_at = {v: i for i, v in enumerate(row_labels)}
    c_at = {v: i for i, v in enumerate(col_labels)}
    for a, b, n in table.rows:
        matrix[r_at[a], c_at[b]] = n
    p = two_way(matrix, row_labels, col_labels, threshold)
    rows: list[tuple[Any, ...]] = [(a, b, p.cells[r_at[a]][c_at[b]]) for a in row_labels
                                   for b in col_labels]
    rows += [(a, TOTAL, p.row_totals[i]) for i, a in enumerate(row_labels)]
    rows += [(TOTAL, b, p.col_totals[j]) for j, b in enumerate(col_labels)]
    rows.append((TOTAL, TOTAL, p.grand_total))
    return _protected_copy(table, rows, p)


def _publish_independent(table: MetricTable, threshold: int) -> MetricTable:
    calls = np.array(table.column("calls"), dtype=np.int64)
    small = primary_cells(calls, threshold)
    rows = [_blank(table, row) if s else row for row, s in zip(table.rows, small, strict=True)]
    notes = {**table.notes, "threshold": threshold, "hidden_primary": int(small.sum()),
             "hidden_complementary": 0}
    if 0 < notes.get("total_calls", 0) < threshold:
        notes.pop("total_calls")
    return MetricTable(table.name, table.columns, rows, public=True, notes=notes)


def _blank(table: MetricTable, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row with ``calls`` and every column derived from it hidden."""
    start = table.columns.index("calls")
    keep = [c not in _DERIVED_FROM_CALLS and c != "calls" for c in table.columns]
    return tuple(v if (i < start or keep[i]) else None for i, v in enumerate(row))


_DERIVED_FROM_CALLS = {"share", "per_1000"}


def _total_row(table: MetricTable, total: int | None) -> tuple[Any, ...]:
    values: dict[str, Any] = {table.columns[0]: TOTAL, "calls": total,
                              "share": 1.0 if total else None}
    return tuple(values.get(c) for c in table.columns)


def _protected_copy(table: MetricTable, rows: list[tuple[Any, ...]],
                    p: ProtectedTable) -> MetricTable:
    notes = {**table.notes, "threshold": p.threshold, "hidden_primary": p.hidden_primary,
             "hidden_complementary": p.hidden_complementary}
    if p.grand_total is None:
        notes.pop("total_calls", None)
    return MetricTable(table.name, table.columns, rows, public=True, notes=notes)
