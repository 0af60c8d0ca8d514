"""Linkage benchmark: ingest with the caller phone sealed into the linkage zone vs dropped.

    python benchmarks/linkage.py [--calls 200000] [--workdir benchmarks/out]

Writes a synthetic CAD export (reused when present), then ingests it twice into fresh stores,
in this process, one after the other:

(a) baseline: the built-in ``synthetic_cad`` mapping, which drops ``Caller Phone`` (the path
    ``benchmarks/ingest.py`` measures);
(b) the same mapping with ``Caller Phone`` sent to the linkage zone (``cswb ingest --link``).

It prints rows, CPU seconds (process time, DuckDB's threads included) and wall seconds of each,
the identifying values linked, the extra CPU time per linked value, and the ratio (b)/(a).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from cswb.ingest.mapping import builtin_mapping, with_linkage
from cswb.ingest.pipeline import BatchSummary, ingest_file
from cswb.security.crypto import generate_key
from cswb.settings import load_settings
from cswb.storage import open_analytic_store
from cswb.synth import build_city, write_export

HERE = Path(__file__).resolve().parent


def measure(path: Path, root: Path, link: bool) -> tuple[BatchSummary, float, float]:
    """Ingest ``path`` into a fresh store under ``root``; (summary, CPU s, wall s)."""
    shutil.rmtree(root, ignore_errors=True)
    settings = load_settings(data_dir=root, classify_at_ingest=False,
                             field_keys={"bench": generate_key()}, search_key=generate_key())
    store = open_analytic_store(settings.resolved_store_url, settings)
    mapping = builtin_mapping("synthetic_cad")
    if link:
        mapping = with_linkage(mapping, ["Caller Phone"])
    cpu, wall = time.process_time(), time.perf_counter()
    summary = ingest_file(path, mapping, store, settings)
    return summary, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--workdir", type=Path, default=HERE / "out")
    args = parser.parse_args()
    path = args.workdir / f"linkage_{args.calls}.csv"
    if not path.exists():
        write_export(build_city(7), path, args.calls, years=2)
    base, base_cpu, base_wall = measure(path, args.workdir / "linkage-a", link=False)
    linked, cpu, wall = measure(path, args.workdir / "linkage-b", link=True)
    print(f"rows read                     {base.rows_read:>12,}")
    print(f"(a) phone dropped  CPU s      {base_cpu:>12.2f}   wall s {base_wall:8.2f}")
    print(f"(b) phone linked   CPU s      {cpu:>12.2f}   wall s {wall:8.2f}")
    print(f"values linked                 {linked.linked:>12,}")
    extra = cpu - base_cpu
    if linked.linked:
        print(f"extra CPU per linked value    {extra / linked.linked * 1e6:>12.1f} us "
              f"({linked.linked / max(extra, 1e-9):,.0f} values per CPU second)")
    print(f"ratio (b)/(a), CPU            {cpu / base_cpu:>12.2f}")
    print(f"ratio (b)/(a), wall           {wall / base_wall:>12.2f}")


if __name__ == "__main__":
    main()
