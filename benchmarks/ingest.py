"""Ingest benchmark: cswb's ingest of a synthetic CAD export against DuckDB's bare copy.

    python benchmarks/ingest.py [--calls 10000000] [--workdir benchmarks/out]

Writes the benchmark export with the synthetic city (reused when a file with the same
parameters is already there), then runs, each in its own subprocess so that peak memory is
measured separately:

(a) cswb's ingest of the file through the built-in ``synthetic_cad`` mapping into a fresh store;
(b) DuckDB's bare ``COPY (SELECT * FROM read_csv('<file>')) TO 'x.parquet'`` of the same file.

It prints rows, seconds, CPU seconds, calls/s and peak memory (max RSS) of both, the ratios
ours/bare (wall clock, and CPU time: on a machine shared with other work the wall-clock ratio is
noisy, the CPU ratio much less), the time of each ingest phase, and the targets (PRODUCT.md: ratio
at most 1.6, peak under 4 GB).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 1.6
TARGET_PEAK_GB = 4.0
HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--workdir", type=Path, default=HERE / "out")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--years", type=int, default=4)
    parser.add_argument("--faults", type=float, default=0.01)
    parser.add_argument("--fresh", action="store_true", help="write the export even if present")
    parser.add_argument("--memory-limit", help="DuckDB memory limit of the ingest "
                        "(default: the settings' duckdb_memory_limit)")
    parser.add_argument("--classify", action="store_true",
                        help="classify at ingest (benchmarks/classify.py sets it)")
    parser.add_argument("--child", choices=["ingest", "bare", "declared"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- the export -------------------------------------------------------------------------------


def export_path(args: argparse.Namespace) -> Path:
    name = f"synthetic_cad_{args.calls}_s{args.seed}_y{args.years}_f{args.faults:g}.csv"
    return args.workdir / name


def ensure_export(args: argparse.Namespace) -> tuple[Path, float | None]:
    """The benchmark file; generated unless one with the same parameters exists."""
    from cswb.synth import build_city, write_export
    from cswb.synth.export import faults_path_for

    path = export_path(args)
    sidecar = faults_path_for(path)
    if path.is_file() and sidecar.is_file() and not args.fresh:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        wanted = {"calls": args.calls, "seed": args.seed, "years": args.years,
                  "fault_rate": args.faults}
        if all(meta.get(k) == v for k, v in wanted.items()):
            return path, None
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    write_export(build_city(args.seed), path, args.calls, years=args.years,
                 fault_rate=args.faults, progress=_print_progress)
    print(file=sys.stderr)
    return path, time.perf_counter() - started


def _print_progress(done: int, total: int) -> None:
    print(f"\rwriting export: {done:,} / {total:,} calls", end="", file=sys.stderr, flush=True)


# -- the two measured runs (children) ---------------------------------------------------------


class PhaseTimer:
    """An ingest progress receiver that records how long each phase took."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, float]] = []
        self._started = time.perf_counter()

    def phase(self, name: str) -> None:
        self.phases.append((name, time.perf_counter()))

    def advance(self, fraction: float) -> None:
        return None

    def durations(self, end: float) -> dict[str, float]:
        marks = [*self.phases, ("end", end)]
        return {name: round(marks[i + 1][1] - at, 2) for i, (name, at) in enumerate(marks[:-1])}


def child_ingest(path: Path, workdir: Path, memory_limit: str | None,
                 classify: bool = False) -> dict[str, object]:
    from cswb.ingest.mapping import builtin_mapping
    from cswb.ingest.pipeline import ingest_file
    from cswb.settings import load_settings
    from cswb.storage import open_analytic_store

    store_dir = workdir / "store"
    shutil.rmtree(store_dir, ignore_errors=True)
    overrides = {"duckdb_memory_limit": memory_limit} if memory_limit else {}
    settings = load_settings(data_dir=workdir / "var", store_url=f"duckdb:///{store_dir}",
                             classify_at_ingest=classify, **overrides)
    store = open_analytic_store(settings.resolved_store_url, settings)
    timer = PhaseTimer()
    started, cpu = time.perf_counter(), cpu_seconds()
    try:
        summary = ingest_file(path, builtin_mapping("synthetic_cad"), store, settings, timer)
    except Exception as exc:  # reported, not raised: the benchmark says what failed and when
        ended = time.perf_counter()
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                "seconds": ended - started, "cpu_seconds": cpu_seconds() - cpu,
                "phases": timer.durations(ended), "memory_limit": settings.duckdb_memory_limit}
    ended = time.perf_counter()
    return {"rows": summary.rows_read, "seconds": ended - started,
            "cpu_seconds": cpu_seconds() - cpu, "phases": timer.durations(ended),
            "summary": summary.to_dict(), "memory_limit": settings.duckdb_memory_limit}


def cpu_seconds() -> float:
    """CPU time (user and system, every thread) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


DECLARED_DIALECT = "delim = ',', quote = '\"', escape = '\"', header = true, ignore_errors = true"
"""The export's dialect, declared: DuckDB's sniffer gives up on an export with ragged rows and
reads each line as one column, which is no baseline for an ingest that splits the fields."""


def child_bare(path: Path, workdir: Path, declared: bool) -> dict[str, object]:
    import duckdb

    target = workdir / "x.parquet"
    target.unlink(missing_ok=True)
    options = f", {DECLARED_DIALECT}" if declared else ""
    con = duckdb.connect()
    started, cpu = time.perf_counter(), cpu_seconds()
    try:
        con.execute(f"COPY (SELECT * FROM read_csv('{path}'{options})) TO '{target}'").fetchall()
    except duckdb.Error as exc:  # the literal sniffer refuses some small exports outright
        return {"error": str(exc).splitlines()[0][:200], "rows": 0, "columns": 0,
                "seconds": time.perf_counter() - started, "cpu_seconds": cpu_seconds() - cpu,
                "options": options.strip(", ")}
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchall()[0][0]
    columns = len(con.execute(f"DESCRIBE SELECT * FROM read_parquet('{target}')").fetchall())
    return {"rows": rows, "seconds": seconds, "cpu_seconds": cpu, "columns": columns,
            "options": options.strip(", ")}


def run_child(kind: str, path: Path, args: argparse.Namespace) -> dict[str, object]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--file",
               str(path), "--workdir", str(args.workdir)]
    if args.memory_limit:
        command += ["--memory-limit", args.memory_limit]
    if args.classify:
        command += ["--classify"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- report -----------------------------------------------------------------------------------


def report(path: Path, written: float | None, ours: dict, bare: dict,
           declared: dict | None) -> None:
    size = path.stat().st_size / 1e9
    print(f"\nfile: {path} ({size:.2f} GB)"
          + (f", written in {written:.1f} s" if written is not None else ", reused"))
    runs = [("(a) cswb ingest", ours)]
    if "error" in bare:
        print(f"(b) duckdb bare copy FAILED: {bare['error']}")
    else:
        runs.append(("(b) duckdb bare copy", bare))
    if declared:
        runs.append(("(b') bare, dialect declared", declared))
    print(f"{'run':<30}{'rows':>14}{'seconds':>10}{'CPU s':>9}{'calls/s':>14}{'peak RSS':>12}")
    for label, run in runs:
        rows = run.get("rows", 0)
        print(f"{label:<30}{rows:>14,}{run['seconds']:>10.1f}{run['cpu_seconds']:>9.1f}"
              f"{rows / run['seconds']:>14,.0f}{run['max_rss_gb']:>10.2f} GB")
    if declared and "error" not in bare:
        print(f"\n(b) read the file as {bare['columns']} column (DuckDB's sniffer gives up on the "
              f"ragged rows); (b') declares the dialect: {declared['options']}")
    _targets(ours, [run for _, run in runs[1:]])
    print("\ningest phases (s): " + ", ".join(f"{k} {v}" for k, v in ours["phases"].items()))
    if "summary" in ours:
        summary = ours["summary"]
        print(f"ingest: stored {summary['stored']:,}, quarantined {summary['quarantined']:,}, "
              f"duplicates {summary['duplicate']:,}, flagged {summary['flagged']:,}, "
              f"reconciles: {summary['reconciles']}")
        if summary.get("classes_added"):
            print(f"call classes classified at ingest: {summary['classes_added']:,}")
        _compare_with_sidecar(path, summary)


def _targets(ours: dict, baselines: list[dict]) -> None:
    if "error" in ours:
        print(f"\n(a) FAILED after {ours['seconds']:.1f} s with DuckDB memory limit "
              f"{ours['memory_limit']}: {ours['error']}")
    else:
        for baseline in baselines:
            ratio = ours["seconds"] / baseline["seconds"]
            cpu_ratio = ours["cpu_seconds"] / baseline["cpu_seconds"]
            print(f"\nratio ours/bare ({baseline['options'] or 'literal'}): {ratio:.2f}  "
                  f"(target <= {TARGET_RATIO})  {'OK' if ratio <= TARGET_RATIO else 'MISSED'}"
                  f"; CPU time ratio {cpu_ratio:.2f}")
    peak = ours["max_rss_gb"]
    ok = peak < TARGET_PEAK_GB and "error" not in ours
    print(f"peak memory of the ingest: {peak:.2f} GB  (target < {TARGET_PEAK_GB} GB; DuckDB "
          f"memory limit {ours['memory_limit']})  {'OK' if ok else 'MISSED'}")


def _compare_with_sidecar(path: Path, summary: dict) -> None:
    from cswb.synth.export import faults_path_for

    expected = json.loads(faults_path_for(path).read_text(encoding="utf-8"))["expected_ingest"]
    differing = [k for k, v in expected.items() if summary.get(k) != v]
    print("ingest counts equal the sidecar's prediction" if not differing
          else f"ingest counts DIFFER from the sidecar's prediction: {differing}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        if args.child == "ingest":
            result = child_ingest(args.file, args.workdir, args.memory_limit, args.classify)
        else:
            result = child_bare(args.file, args.workdir, args.child == "declared")
        result["max_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(json.dumps(result))
        return
    path, written = ensure_export(args)
    ours = run_child("ingest", path, args)
    bare = run_child("bare", path, args)
    declared = (run_child("declared", path, args)
                if "error" in bare or bare["columns"] == 1 else None)
    report(path, written, ours, bare, declared)


if __name__ == "__main__":
    main()
