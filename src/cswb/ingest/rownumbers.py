"""Exact source row numbers when the CSV reader skipped records.

DuckDB numbers the records it yields (``_ord``); records it rejected are reported with their own
row numbers. A yielded record's true row is ``_ord`` plus the number of rejects before it. With
rejects at rows ``r_1 < r_2 < ...``, reject ``i`` has ``a_i = r_i - i`` yielded records before
it, so ``row(k) = k + #{i : a_i < k}``. That step function is joined on a bucket of ``_ord``
(a hash join against a small table), with a few steps per bucket resolved by comparisons.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

MAX_STEPS = 4


def step_table(reject_rows: list[int]) -> tuple[pa.Table, int, int]:
    """Bucket table, bucket width (a power of two) and the total number of rejects."""
    rows = np.asarray(sorted(reject_rows), dtype=np.int64)
    a = rows - np.arange(1, len(rows) + 1, dtype=np.int64)
    thresholds, counts = np.unique(a, return_counts=True)
    width = 1 << 16
    while width > 1:
        buckets = thresholds // width
        if np.unique(buckets, return_counts=True)[1].max(initial=0) <= MAX_STEPS:
            break
        width //= 2
    buckets = thresholds // width
    last = int(buckets.max(initial=0))
    cumulative = np.concatenate(([0], np.cumsum(counts)))
    starts = np.arange(last + 1, dtype=np.int64) * width
    # base: rejects whose threshold lies in an earlier bucket (a_i < bucket start)
    base = cumulative[np.searchsorted(thresholds, starts, side="left")]
    thresholds_at = np.full((MAX_STEPS, last + 1), np.iinfo(np.int64).max, dtype=np.int64)
    counts_at = np.zeros((MAX_STEPS, last + 1), dtype=np.int64)
    slot = np.zeros(last + 1, dtype=np.int64)
    for t, n, b in zip(thresholds, counts, buckets, strict=True):
        thresholds_at[slot[b], b], counts_at[slot[b], b] = t, n
        slot[b] += 1
    columns = {"bucket": np.arange(last + 1, dtype=np.int64), "base": base}
    for j in range(MAX_STEPS):
        columns[f"s{j}"], columns[f"c{j}"] = thresholds_at[j], counts_at[j]
    return pa.table(columns), width, len(rows)


def row_sql(table: str, width: int, total: int, ord_col: str = "_ord") -> tuple[str, str]:
    """(expression for the true row, join clause) given a registered step table."""
    steps = " + ".join(f"CASE WHEN {ord_col} > _st.s{j} THEN _st.c{j} ELSE 0 END"
                       for j in range(MAX_STEPS))
    expr = f"{ord_col} + CASE WHEN _st.bucket IS NULL THEN {total} ELSE _st.base + {steps} END"
    join = f"LEFT JOIN {table} _st ON _st.bucket = {ord_col} // {width}"
    return expr, join
