"""Results that take seconds (forecasts, staffing, scenarios over every call), kept a while.

A result is kept under a key that includes what the stored calls are (:func:`store_key`: their
number, how many are classified, the last date), so a new batch makes a new key and the old
result is never served for new data. The newest :data:`SIZE` results are kept, errors too (a
:class:`~cswb.errors.CswbError` is raised again, not recomputed).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from cswb.errors import CswbError
from cswb.storage.sql import ident, run

SIZE = 32
T = TypeVar("T")
_results: OrderedDict[Hashable, Any] = OrderedDict()
_lock = threading.Lock()


def store_key(con: Any) -> tuple[Any, ...]:
    """What the stored calls are now (behind any filter's temporary view)."""
    calls = f"{ident(run(con, 'SELECT current_database()')[0][0])}.main.calls"
    return tuple(run(con, f"SELECT count(*), count(category), max(local_date) FROM {calls}")[0])


def kept(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, or its kept result under ``key`` (one computation at a time)."""
    with _lock:
        if key in _results:
            _results.move_to_end(key)
            found = _results[key]
        else:
            try:
                found = compute()
            except CswbError as exc:
                found = exc
            _results[key] = found
            while len(_results) > SIZE:
                _results.popitem(last=False)
    if isinstance(found, CswbError):
        raise found
    result: T = found
    return result


def forget() -> None:
    """Drop every kept result (benchmarks measure computing, not remembering)."""
    with _lock:
        _results.clear()
