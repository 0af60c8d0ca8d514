"""Classifier benchmark: CPU time to classify N distinct call keys.

    python benchmarks/classify_keys.py [--keys 100000] [--distinct-types 0]

Keys are built from the synthetic city's vocabulary (call types, dispositions, priorities):
every key is a distinct (initial type, final type, disposition, priority) combination, as
ingest would pass them. ``--distinct-types N`` adds N made-up call-type strings (a city with an
unusually large vocabulary) so that the per-string work grows too.

Measured in the same run, with ``time.process_time`` (CPU seconds, robust on a shared machine):

(a) ``Classifier.classify_keys`` on the keys (rules, model, overrides, combination);
(b) baseline "naive rules": a Python loop over the keys trying each rule's regular expression
    on the final call type until one matches (what the vectorised design avoids).

Prints keys, CPU seconds, keys/s and the ratio ours/baseline (lower is better), and checks the
brief's target: 100,000 distinct keys in a few CPU seconds.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import time
from importlib import resources

import pyarrow as pa

from cswb.classify import build_classifier
from cswb.classify.normalise import normalise
from cswb.settings import load_settings

TARGET_CPU_SECONDS = 5.0


def vocabulary(name: str, column: str) -> list[str]:
    text = resources.files("cswb.synth").joinpath(f"vocab/{name}").read_text("utf-8")
    return [row[column] for row in csv.DictReader(text.splitlines())]


def make_keys(n: int, extra_types: int, seed: int = 7) -> pa.Table:
    rng = random.Random(seed)
    types = vocabulary("call_types.csv", "call_type")
    types += [f"{rng.choice(types)} {rng.randrange(10**6):06d}" for _ in range(extra_types)]
    dispositions = vocabulary("dispositions.csv", "description")
    seen: set[tuple[str, str, str, int]] = set()
    while len(seen) < n:
        seen.add((rng.choice(types), rng.choice(types), rng.choice(dispositions),
                  rng.randint(1, 4)))
    rows = sorted(seen)
    return pa.table({
        "source": pa.array(["bench"] * n),
        "initial_call_type": pa.array([r[0] for r in rows]),
        "final_call_type": pa.array([r[1] for r in rows]),
        "disposition_raw": pa.array([r[2] for r in rows]),
        "priority_raw": pa.array([str(r[3]) for r in rows]),
        "priority": pa.array([r[3] for r in rows], pa.int8()),
    })


def naive_rules(keys: pa.Table, patterns: list[re.Pattern[str]]) -> int:
    placed = 0
    for raw in keys.column("final_call_type").to_pylist():
        text = normalise(raw)
        for pattern in patterns:
            if pattern.search(text):
                placed += 1
                break
    return placed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--distinct-types", type=int, default=0)
    args = parser.parse_args()
    keys = make_keys(args.keys, args.distinct_types)
    types = len(set(keys.column("initial_call_type").to_pylist())
                | set(keys.column("final_call_type").to_pylist()))
    clf = build_classifier(load_settings(data_dir="benchmarks/out/classify"))
    start = time.process_time()
    out = clf.classify_keys(keys)
    ours = time.process_time() - start
    patterns = [re.compile(r.pattern) for r in clf.rules.category_rules]
    start = time.process_time()
    naive_rules(keys, patterns)
    base = time.process_time() - start
    unknown = out.column("category").to_pylist().count("unknown")
    print(f"keys: {keys.num_rows:,} distinct, over {types:,} distinct call-type strings")
    print(f"cswb classify_keys      : {ours:7.2f} CPU s  {keys.num_rows / ours:12,.0f} keys/s  "
          f"({unknown:,} unknown)")
    print(f"baseline naive rules    : {base:7.2f} CPU s  {keys.num_rows / base:12,.0f} keys/s")
    print(f"ratio ours/baseline     : {ours / base:.2f}")
    verdict = "met" if ours <= TARGET_CPU_SECONDS * keys.num_rows / 100_000 else "MISSED"
    print(f"target (100,000 keys in {TARGET_CPU_SECONDS:.0f} CPU s, scaled): {verdict}")


if __name__ == "__main__":
    main()
