"""API benchmark: metric endpoints under 16 concurrent clients against DuckDB's bare SQL.

    python benchmarks/api.py [--calls 10000000] [--clients 16] [--seconds 30] [--cold-seconds 10]
                             [--modes both|rollups|calls]

Builds (once, reused after) a store of ``--calls`` synthetic calls: the synthetic city's CAD
export ingested through the real pipeline with classification at ingest on, so categories and
flags come from ``call_classes`` as in production. For each mode — the calls view (before: the
server with ``api_rollups`` off, the baseline) and roll-ups (after) — starts ``cswb serve`` on
127.0.0.1 in a subprocess and runs ``--clients`` threads without think time, each request one
of the main metric endpoints with random filters (period, area, category): first for
``--cold-seconds`` right after the server starts (cold), then for ``--seconds`` (warm). The
roll-ups are measured twice: a first start on an empty roll-up cache (cold requests wait for
the build) and a restart (cold requests wait for the cached roll-ups to load). Request loops
are bounded in time and count and stop by themselves. Then, in this process, the SQL the same
metrics emit for a sample of the same random requests runs directly on DuckDB, one request at a
time (bare; on the roll-ups, built first and timed, for the roll-up mode).

Prints requests/s and p50/p95/p99/max of cold and warm, the bare SQL's p50/p95, the ratios, and
the roll-ups against the calls view of the same run. Targets (issue 4): warm p95 under 200 ms,
cold p95 under 1 s.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_WARM_P95 = 0.200
TARGET_COLD_P95 = 1.0
MAX_REQUESTS_PER_CLIENT = 100_000

ENDPOINTS: tuple[tuple[str, dict[str, str]], ...] = (
    ("/api/v1/metrics/volumes", {"by": "category"}),
    ("/api/v1/metrics/volumes", {"by": "area"}),
    ("/api/v1/metrics/volumes", {"by": "period", "grain": "month"}),
    ("/api/v1/metrics/hour-of-week", {}),
    ("/api/v1/metrics/crime-split", {}),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--years", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=HERE / "out" / "api")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--cold-seconds", type=float, default=10.0)
    parser.add_argument("--bare-requests", type=int, default=200)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--modes", choices=("both", "rollups", "calls"), default="both",
                        help="serve from the calls view (before), roll-ups (after: a first "
                             "start that builds them, then a restart that loads them), or both")
    return parser.parse_args()


# -- the store -----------------------------------------------------------------------------


def ensure_store(args: argparse.Namespace) -> Path:
    """A store of the synthetic city's CAD export, ingested with classification on.

    The export ``out/synthetic_cad_<calls>_s7_y<years>_f0.01.csv`` is reused when present (else
    written); ingest classifies each new call class as it commits (``classify_at_ingest``), so
    the ``calls`` view reads category and flags from ``call_classes`` as in production. The
    store is built once per ``--calls`` and ``--years`` and reused after.
    """
    from cswb.ingest.mapping import builtin_mapping
    from cswb.ingest.pipeline import ingest_file
    from cswb.settings import load_settings
    from cswb.storage import open_analytic_store
    from cswb.synth import build_city, write_export

    tag = f"{args.calls}_y{args.years}"
    store_dir = args.workdir / f"ingested_{tag}"
    if (store_dir / "_manifest.json").is_file():
        return store_dir
    csv = HERE / "out" / f"synthetic_cad_{args.calls}_s7_y{args.years}_f0.01.csv"
    if not csv.is_file():
        print(f"writing {args.calls:,} synthetic calls to {csv} ...", file=sys.stderr)
        write_export(build_city(7), csv, args.calls, years=args.years)
    settings = load_settings(data_dir=args.workdir / "var",
                             store_url=f"duckdb:///{store_dir}", classify_at_ingest=True)
    store = open_analytic_store(settings.resolved_store_url, settings)
    print(f"ingesting {csv.name} with classification on ...", file=sys.stderr)
    started = time.perf_counter()
    ingest_file(csv, builtin_mapping("synthetic_cad"), store, settings)
    print(f"ingested in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return store_dir


# -- random requests -----------------------------------------------------------------------


@dataclass(frozen=True)
class Universe:
    first: date
    last: date
    areas: list[str]
    categories: list[str]


def universe(store_dir: Path) -> Universe:
    from cswb.settings import load_settings
    from cswb.storage import AnalyticStore
    from cswb.storage.sql import run

    con = AnalyticStore(store_dir, load_settings()).connect()
    first, last = run(con, "SELECT min(local_date), max(local_date) FROM calls")[0]
    areas = [r[0] for r in run(con, "SELECT DISTINCT neighbourhood FROM calls "
                                    "WHERE neighbourhood IS NOT NULL ORDER BY 1")]
    cats = [r[0] for r in run(con, "SELECT DISTINCT category FROM calls "
                                   "WHERE category IS NOT NULL ORDER BY 1")]
    con.close()
    return Universe(first, last, areas, cats)


def random_request(rng: random.Random, u: Universe) -> tuple[str, dict[str, str]]:
    path, params = rng.choice(ENDPOINTS)
    query = dict(params)
    if rng.random() < 0.75:
        length = rng.choice([7, 30, 90, 365])
        start = u.first + timedelta(days=rng.randrange(max(1, (u.last - u.first).days - length)))
        query["from"], query["to"] = start.isoformat(), (start + timedelta(days=length)).isoformat()
    if rng.random() < 0.5:
        query["area"] = rng.choice(u.areas)
    if rng.random() < 0.5 and u.categories:
        query["category"] = rng.choice(u.categories)
    return path, query


# -- the load ------------------------------------------------------------------------------


def start_server(store_dir: Path, args: argparse.Namespace, rollups: bool
                 ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CSWB_STORE_URL": f"duckdb:///{store_dir.resolve()}",
           "CSWB_DATA_DIR": str(args.workdir / "var"), "CSWB_LOG_LEVEL": "ERROR",
           "CSWB_API_ROLLUPS": "true" if rollups else "false"}
    server = subprocess.Popen([sys.executable, "-m", "cswb.cli.main", "serve", "--host",
                               "127.0.0.1", "--port", str(args.port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{args.port}/api/v1/health").status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the server did not start within 60 s")


def load(args: argparse.Namespace, u: Universe, seconds: float, seed: int
         ) -> tuple[list[float], int, float]:
    """Latencies of successful requests, count of failures, wall seconds."""
    import httpx

    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=60) as http:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= stop_at:
                    return
                path, query = random_request(rng, u)
                started = time.perf_counter()
                ok = http.get(path, params=query).status_code == 200
                took = time.perf_counter() - started
                with lock:
                    if ok:
                        latencies.append(took)
                    else:
                        failures[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failures[0], time.perf_counter() - began


# -- bare DuckDB ---------------------------------------------------------------------------


class RecordingEngine:
    """Records the SQL a metric emits (running it, so later queries see real answers)."""

    def __init__(self, real: Any) -> None:
        self.dialect = real.dialect
        self.rollups = real.rollups  # so the metrics emit the roll-up SQL when there are some
        self.real = real
        self.sql: list[str] = []

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        self.sql.append(sql)
        return self.real.rows(sql)


def bare(store_dir: Path, u: Universe, requests: int, rollups: bool) -> list[float]:
    """Seconds per request of the same metrics' SQL run directly on DuckDB, one at a time
    (on the calls view, or on roll-ups built first in the same database)."""
    from cswb.analytics import metrics
    from cswb.analytics.query import CallFilter, DuckDBEngine
    from cswb.analytics.rollup import Rollups
    from cswb.settings import load_settings
    from cswb.storage import AnalyticStore
    from cswb.storage.sql import run

    con = AnalyticStore(store_dir, load_settings()).connect()
    engine = DuckDBEngine(con, Rollups(lambda sql: run(con, sql)) if rollups else None)
    if engine.rollups is not None:
        wall, cpu = time.perf_counter(), time.process_time()
        for flags in (True, False):
            engine.rollups.relation("neighbourhood", flags, monthly=True)  # and the daily one
        print(f"roll-ups of neighbourhood built in {time.perf_counter() - wall:.1f} s "
              f"({time.process_time() - cpu:.1f} s CPU): " + ", ".join(
                  f"{name} {run(con, f'SELECT count(*) FROM {name}')[0][0]:,} rows"
                  for name in engine.rollups.built()))
    rng = random.Random(99)
    timings = []
    for _ in range(requests):
        path, q = random_request(rng, u)
        flt = CallFilter(date_from=date.fromisoformat(q["from"]) if "from" in q else None,
                         date_to=date.fromisoformat(q["to"]) if "to" in q else None,
                         area=q.get("area"), category=q.get("category"))
        recorder = RecordingEngine(engine)
        if path.endswith("volumes"):
            metrics.volumes(recorder, flt, q["by"], q.get("grain", "month"))
        elif path.endswith("hour-of-week"):
            metrics.hour_of_week(recorder, flt)
        else:
            metrics.crime_split(recorder, flt)
        started = time.perf_counter()
        for sql in recorder.sql:
            run(con, sql)
        timings.append(time.perf_counter() - started)
    con.close()
    return timings


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def report(label: str, latencies: list[float], failures: int, wall: float) -> None:
    print(f"{label:<16} {len(latencies):>6} requests in {wall:5.1f} s = "
          f"{len(latencies) / wall:7.1f} req/s   p50 {pct(latencies, 50) * 1000:7.1f} ms   "
          f"p95 {pct(latencies, 95) * 1000:7.1f} ms   p99 {pct(latencies, 99) * 1000:7.1f} ms"
          f"   max {max(latencies, default=float('nan')) * 1000:7.1f} ms   failed {failures}")


def report_bare(label: str, timings: list[float]) -> None:
    print(f"{label:<16} {len(timings):>6} requests, one at a time, DuckDB only: "
          f"p50 {pct(timings, 50) * 1000:7.1f} ms   p95 {pct(timings, 95) * 1000:7.1f} ms"
          f"   ({1 / (sum(timings) / len(timings)):.1f} req/s on one connection)")


Run = tuple[list[float], int, float]


def serve_and_load(store_dir: Path, args: argparse.Namespace, u: Universe, rollups: bool
                   ) -> tuple[Run, Run]:
    """Cold then warm load against a freshly started server."""
    server = start_server(store_dir, args, rollups)
    try:
        return load(args, u, args.cold_seconds, seed=1), load(args, u, args.seconds, seed=2)
    finally:
        server.terminate()
        server.wait(timeout=30)


MODES: dict[str, tuple[tuple[str, bool, bool], ...]] = {
    # (label, roll-ups on, roll-up cache cleared before the server starts)
    "calls": (("calls view", False, True),),
    "rollups": (("roll-ups, first start", True, True), ("roll-ups, restart", True, False)),
}
MODES["both"] = MODES["calls"] + MODES["rollups"]


def main() -> int:
    args = parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    store_dir = ensure_store(args)
    u = universe(store_dir)
    print(f"store: {args.calls:,} calls, {u.first} to {u.last}, {len(u.areas)} areas, "
          f"{len(u.categories)} categories; {args.clients} clients, {os.cpu_count()} cores")
    results: dict[str, tuple[Run, Run]] = {}
    bare_times: dict[bool, list[float]] = {}
    for label, rollups, clear in MODES[args.modes]:
        if clear:
            shutil.rmtree(args.workdir / "var" / "rollups", ignore_errors=True)
        results[label] = serve_and_load(store_dir, args, u, rollups)
        if rollups not in bare_times:
            bare_times[rollups] = bare(store_dir, u, args.bare_requests, rollups)
    for label, _on, _ in MODES[args.modes]:
        cold, warm = results[label]
        report(f"{label} cold", *cold)
        report(f"{label} warm", *warm)
    for rollups, timings in bare_times.items():
        name = "roll-ups" if rollups else "calls view"
        report_bare(f"{name} bare", timings)
        warm = next(results[label][1][0] for label, on, _ in MODES[args.modes] if on == rollups)
        print(f"{name} ratio: warm p50 / bare p50 {pct(warm, 50) / pct(timings, 50):.1f}x   "
              f"warm p95 / bare p95 {pct(warm, 95) / pct(timings, 95):.1f}x (the API's latency "
              f"includes queueing behind {args.clients} clients on {os.cpu_count()} cores)")
    if "calls view" in results and "roll-ups, first start" in results:
        (_, before), (_, after) = results["calls view"], results["roll-ups, first start"]
        print(f"baseline: calls view, same run. warm p95 calls view / roll-ups "
              f"{pct(before[0], 95) / pct(after[0], 95):.1f}x; warm req/s roll-ups / calls "
              f"view {(len(after[0]) / after[2]) / (len(before[0]) / before[2]):.1f}x")
    for label, (cold, warm) in results.items():
        warm_p95, cold_p95 = pct(warm[0], 95), pct(cold[0], 95)
        print(f"target ({label}) warm p95 < {TARGET_WARM_P95 * 1000:.0f} ms: "
              f"{'MET' if warm_p95 < TARGET_WARM_P95 else 'NOT MET'} ({warm_p95 * 1000:.0f} ms);"
              f" cold p95 < {TARGET_COLD_P95 * 1000:.0f} ms: "
              f"{'MET' if cold_p95 < TARGET_COLD_P95 else 'NOT MET'} ({cold_p95 * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
