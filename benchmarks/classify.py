"""Classification benchmark: ingest + classify the benchmark export, against DuckDB's bare copy.

    python benchmarks/classify.py [--calls 10000000] [--workdir benchmarks/out]

The same runs as ``benchmarks/ingest.py`` (the export is shared and reused), with the batch's
call classes classified at ingest: each distinct (source, call types, disposition, priority)
is classified once and joined to its calls by class key. It prints calls/s, the classification
phase, the number of classes and the ratio ours/bare against issue 3's target (at most 2.0).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest  # the sibling benchmark script

ingest.TARGET_RATIO = 2.0

if __name__ == "__main__":
    ingest.main([*sys.argv[1:], "--classify"])
