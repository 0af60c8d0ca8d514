"""Progress reporting for long ingests, decoupled from how it is shown."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import duckdb


class Progress(Protocol):
    """Receives the phases of a long job and the fraction done of the current one."""

    def phase(self, name: str) -> None: ...

    def advance(self, fraction: float) -> None: ...


class SilentProgress:
    """Shows nothing (``--quiet``, tests, the API)."""

    def phase(self, name: str) -> None:
        return None

    def advance(self, fraction: float) -> None:
        return None


@contextmanager
def watch_query(con: duckdb.DuckDBPyConnection, progress: Progress,
                interval: float = 0.25) -> Iterator[None]:
    """Poll DuckDB's progress of the query running on ``con`` while the block runs."""
    stop = threading.Event()
    poll: Callable[[], float] = con.query_progress

    def run() -> None:
        while not stop.wait(interval):
            try:
                value = poll()
            except duckdb.Error:
                continue
            if value >= 0:
                progress.advance(min(value, 100.0) / 100.0)

    thread = threading.Thread(target=run, name="cswb-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        progress.advance(1.0)
