"""Suppression never leaves a hidden cell derivable: checked by solving for its bounds.

The checker below is written independently of :mod:`cswb.analytics.disclosure`: it sees only
what is published (cells, row, column and grand totals, None where hidden) and asks a linear
programme for the smallest and largest value each hidden cell can take.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from cswb.analytics.disclosure import (
    ProtectedTable,
    _exact_width,
    feasible_bounds,
    layout,
    publish,
    two_way,
)
from cswb.analytics.query import AnalyticsError
from cswb.analytics.tables import MetricTable

THRESHOLD = 10


def hidden_bounds(p: ProtectedTable) -> dict[tuple[str, int, int], tuple[float, float]]:
    """Bounds of every hidden entry given only the published ones (an attacker's view)."""
    n_rows, n_cols = len(p.cells), len(p.cells[0])
    entries: dict[tuple[str, int, int], int | None] = {}
    for r in range(n_rows):
        for c in range(n_cols):
            entries[("cell", r, c)] = p.cells[r][c]
    for r in range(n_rows):
        entries[("row", r, 0)] = p.row_totals[r]
    for c in range(n_cols):
        entries[("col", c, 0)] = p.col_totals[c]
    entries[("grand", 0, 0)] = p.grand_total
    equations = [([("cell", r, c) for c in range(n_cols)], ("row", r, 0)) for r in range(n_rows)]
    equations += [([("cell", r, c) for r in range(n_rows)], ("col", c, 0)) for c in range(n_cols)]
    equations += [([("row", r, 0) for r in range(n_rows)], ("grand", 0, 0)),
                  ([("col", c, 0) for c in range(n_cols)], ("grand", 0, 0))]
    unknown = [k for k, v in entries.items() if v is None]
    at = {k: i for i, k in enumerate(unknown)}
    a_eq, b_eq = [], []
    for parts, total in equations:
        row, rhs = np.zeros(len(unknown)), 0.0
        for key, sign in [*((q, 1.0) for q in parts), (total, -1.0)]:
            value = entries[key]
            if value is None:
                row[at[key]] += sign
            else:
                rhs -= sign * value
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
        else:
            assert abs(rhs) < 1e-9, "published entries contradict each other"
    bounds = {}
    for key in unknown:
        obj = np.zeros(len(unknown))
        obj[at[key]] = 1.0
        kw = {"A_eq": np.array(a_eq), "b_eq": np.array(b_eq)} if a_eq else {}
        lo = linprog(obj, bounds=(0, None), method="highs", **kw)
        hi = linprog(-obj, bounds=(0, None), method="highs", **kw)
        bounds[key] = (lo.fun if lo.status == 0 else 0.0,
                       -hi.fun if hi.status == 0 else math.inf)
    return bounds


def true_value(m: np.ndarray, key: tuple[str, int, int]) -> int:
    kind, i, j = key
    if kind == "cell":
        return int(m[i, j])
    if kind == "row":
        return int(m[i].sum())
    if kind == "col":
        return int(m[:, i].sum())
    return int(m.sum())


def assert_protected(m: np.ndarray, p: ProtectedTable, threshold: int) -> None:
    for r in range(m.shape[0]):
        for c in range(m.shape[1]):
            shown = p.cells[r][c]
            if 0 < m[r, c] < threshold:
                assert shown is None, f"small cell {(r, c)} published"
            assert shown is None or shown == m[r, c]
    for key, (lo, hi) in hidden_bounds(p).items():
        truth = true_value(m, key)
        assert lo - 1e-6 <= truth <= hi + 1e-6
        assert hi - lo >= threshold - 1e-6, (key, truth, lo, hi, p)


small_counts = st.one_of(st.integers(0, 12), st.integers(0, 60))
tables = st.integers(1, 5).flatmap(lambda rows: st.integers(1, 5).flatmap(
    lambda cols: st.lists(st.lists(small_counts, min_size=cols, max_size=cols),
                          min_size=rows, max_size=rows)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables, st.sampled_from([3, 5, 10]))
def test_no_hidden_cell_is_derivable(rows: list[list[int]], threshold: int) -> None:
    m = np.array(rows, dtype=np.int64)
    p = two_way(m, tuple(range(m.shape[0])), tuple(range(m.shape[1])), threshold)
    assert_protected(m, p, threshold)


@settings(max_examples=100, deadline=None)
@given(st.lists(small_counts, min_size=1, max_size=12))
def test_one_way_tables_are_protected(counts: list[int]) -> None:
    m = np.array(counts, dtype=np.int64).reshape(-1, 1)
    assert_protected(m, two_way(m, tuple(range(len(counts))), ("n",), THRESHOLD), THRESHOLD)


def test_lone_small_cell_gets_the_cheapest_complement() -> None:
    m = np.array([[3], [50], [60]])
    p = two_way(m, ("a", "b", "c"), ("n",), THRESHOLD)
    assert [row[0] for row in p.cells] == [None, None, 60] and p.grand_total == 113
    assert (p.hidden_primary, p.hidden_complementary) == (1, 1)


def test_zeros_are_published_and_a_tiny_total_hides_everything() -> None:
    p = two_way(np.array([[0, 40], [20, 30]]), ("a", "b"), ("x", "y"), THRESHOLD)
    assert p.cells == [[0, 40], [20, 30]] and p.hidden_primary == 0
    tiny = two_way(np.array([[1, 2], [0, 3]]), ("a", "b"), ("x", "y"), THRESHOLD)
    assert tiny.grand_total is None and all(v is None for v in tiny.row_totals)


def test_two_way_with_a_small_cell_hides_a_rectangle() -> None:
    m = np.array([[2, 30, 40], [25, 35, 45], [50, 60, 70]])
    p = two_way(m, ("a", "b", "c"), ("x", "y", "z"), THRESHOLD)
    assert p.cells[0][0] is None and p.hidden_complementary >= 3
    assert_protected(m, p, THRESHOLD)


def test_publish_hides_shares_with_their_counts() -> None:
    t = MetricTable("calls_by_area", ("area", "calls", "share"),
                    [("A", 100, 100 / 112), ("B", 8, 8 / 112), ("C", 4, 4 / 112)], public=True)
    out = publish(t, THRESHOLD)
    assert out.rows[1] == ("B", None, None) and out.rows[2] == ("C", None, None)
    assert out.rows[-1] == ("total", 112, 1.0) and out.rows[0] == t.rows[0]
    assert out.notes["hidden_primary"] == 2


def test_publish_two_way_and_flags() -> None:
    t = MetricTable("x", ("category", "area", "calls"),
                    [("c1", "A", 3), ("c1", "B", 40), ("c2", "A", 30), ("c2", "B", 50)],
                    public=True)
    out = {(a, b): n for a, b, n in publish(t, THRESHOLD).rows}
    assert out[("c1", "A")] is None and out[("total", "total")] == 123
    assert sum(v is None for v in out.values()) >= 4
    flags = MetricTable("calls_by_flag", ("flag", "calls", "share"),
                        [("weapon", 4, 0.04), ("youth", 20, 0.2)], public=True)
    assert publish(flags, THRESHOLD).rows == [("weapon", None, None), ("youth", 20, 0.2)]
    few = MetricTable("calls_by_flag", ("flag", "calls", "share"), [("weapon", 4, 0.5)],
                      public=True, notes={"total_calls": 8})
    assert "total_calls" not in publish(few, THRESHOLD).notes
    with pytest.raises(AnalyticsError, match="not meant"):
        publish(MetricTable("r", ("location", "calls"), [("X", 3)]), THRESHOLD)


@settings(max_examples=200, deadline=None)
@given(tables, st.data())
def test_flow_widths_agree_with_linear_programming(rows: list[list[int]],
                                                   data: st.DataObject) -> None:
    """The network-flow shortcut gives the programme's width wherever it is below the limit."""
    m = np.array(rows, dtype=np.int64)
    values, lines = layout(m)
    hidden = np.array(data.draw(st.lists(st.booleans(), min_size=len(values),
                                         max_size=len(values))))
    exact = _exact_width(*m.shape)
    for k in np.flatnonzero(hidden):
        lo, hi = feasible_bounds(values, lines, hidden, int(k))
        flow = exact(values, hidden, int(k), 12)
        assert flow is not None
        if hi - lo < 12:
            assert flow == pytest.approx(hi - lo, abs=1e-6)
        else:
            assert flow >= 12
