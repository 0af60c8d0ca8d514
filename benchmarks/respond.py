"""Respond benchmark: applying a response policy to calls, and simulating a staffing plan.

    python benchmarks/respond.py [--calls 5000000] [--python-calls 200000]

Builds a table of random calls (category, flags, priority) in DuckDB, then measures, in CPU
seconds (``time.process_time``, all threads) in the same run:

(a) cswb: the default policy compiled to one SQL ``CASE`` over the flags turned into bits once
    per call (``with_tier_sql``), tiers counted over every call; (a') the same ``CASE`` with list
    functions on every row (``tier_sql``), for comparison;
(b) baseline "bare scan": DuckDB counting the same calls by category (reading the same columns
    without the policy), so (a)/(b) is the policy's own cost;
(c) baseline "row by row": the same policy evaluated in Python call by call
    (``Policy.tier_for``) on a sample, the way a naive implementation would.

It checks that (a) and (c) agree on the sample, prints calls/s of each and the ratios, and then
times one simulation of a week-profile staffing plan (simulated calls/s).
"""

from __future__ import annotations

import argparse
import time

import duckdb
import numpy as np

from cswb.respond.policy import (
    TAXONOMY_CATEGORIES,
    TAXONOMY_FLAGS,
    load_policy,
    tier_sql,
    with_tier_sql,
)
from cswb.respond.service_times import load_service_times
from cswb.respond.simulate import HOURS_PER_WEEK, SimulationSettings, simulate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000_000)
    parser.add_argument("--python-calls", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def make_calls(con: duckdb.DuckDBPyConnection, n: int, seed: int) -> None:
    categories = "[" + ", ".join(f"'{c}'" for c in TAXONOMY_CATEGORIES) + "]"
    flags = "[" + ", ".join(f"'{f}'" for f in TAXONOMY_FLAGS) + "]"
    con.execute(f"SELECT setseed({(seed % 1000) / 1000})").fetchall()
    con.execute(f"""
        CREATE TABLE calls AS
        SELECT i AS n,
               {categories}[1 + floor(random() * {len(TAXONOMY_CATEGORIES)})::INT] AS category,
               list_filter({flags}, lambda f: random() < 0.12) AS flags,
               CASE WHEN random() < 0.1 THEN NULL ELSE 1 + floor(random() * 4)::TINYINT END
                   AS priority
        FROM range({n}) t(i)""").fetchall()


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.process_time()
    result = fn()
    return result, time.process_time() - start


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    policy = load_policy()
    con = duckdb.connect()
    make_calls(con, args.calls, args.seed)
    case = tier_sql(policy)

    ours, ours_s = timed(lambda: con.execute(
        f"SELECT tier, count(*) FROM {with_tier_sql(policy, 'calls')} GROUP BY ALL").fetchall())
    _, lists_s = timed(lambda: con.execute(
        f"SELECT {case} AS tier, count(*) FROM calls GROUP BY ALL").fetchall())
    _, bare_s = timed(lambda: con.execute(
        "SELECT category, count(*), count(flags), count(priority) FROM calls GROUP BY ALL"
    ).fetchall())
    sample = con.execute(f"SELECT category, flags, priority, {case} FROM calls "
                         f"WHERE n < {args.python_calls} ORDER BY n").fetchall()
    python_tiers, python_s = timed(lambda: [policy.tier_for(c, f, p).value
                                            for c, f, p, _ in sample])
    assert python_tiers == [row[3] for row in sample], "SQL and Python tiers disagree"
    assert sum(n for _, n in ours) == args.calls

    ours_rate, bare_rate = args.calls / ours_s, args.calls / bare_s
    python_rate = len(sample) / python_s
    print(f"calls: {args.calls:,} (Python sample {len(sample):,}, tiers identical)")
    print(f"(a) cswb CASE over DuckDB   {ours_s:8.2f} CPU s  {ours_rate:14,.0f} calls/s")
    lists_rate = args.calls / lists_s
    print(f"(a') same CASE, list tests  {lists_s:8.2f} CPU s  {lists_rate:14,.0f} calls/s")
    print(f"(b) bare DuckDB scan        {bare_s:8.2f} CPU s  {bare_rate:14,.0f} calls/s")
    print(f"(c) Python row by row       {python_s:8.2f} CPU s  {python_rate:14,.0f} calls/s")
    print(f"ratio (a)/(b) CPU time per call: {ours_s / bare_s:.2f}")
    print(f"speed-up of (a) over (c): {ours_rate / python_rate:,.0f}x")

    rates = np.where(np.arange(HOURS_PER_WEEK) % 24 >= 8, 3.0, 1.0)
    teams = np.full(HOURS_PER_WEEK, 4)
    result, sim_s = timed(lambda: simulate(rates, teams, load_service_times(), 45.0,
                                           SimulationSettings(weeks=26, replications=20)))
    simulated = int(result.calls_by_hour.sum())
    print(f"simulation: {simulated:,} calls (20 x 26 weeks) in {sim_s:.2f} CPU s, "
          f"{simulated / sim_s:,.0f} calls/s")


if __name__ == "__main__":
    main()
