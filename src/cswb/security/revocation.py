"""Prompt token revocation across server processes.

Every process caches verified tokens for ``token_cache_seconds``. A revocation (logout,
revoked token, disabled account) raises a counter in the operational store in the same
transaction; each process reads that counter at most every ``token_revocation_check_seconds``
(one primary-key read) and empties its token cache when it has moved. So a revocation is
honoured everywhere within that interval, while a busy process still verifies almost every
request from its cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cswb.storage.operational import OperationalStore
from cswb.storage.operational.models import RevocationEpoch

EPOCH_ROW = 1


def raise_revocation_epoch(session: Session) -> None:
    """Tell every process to drop its cached tokens (call in the revoking transaction)."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" \
        else sqlite_insert
    session.execute(insert(RevocationEpoch).values(id=EPOCH_ROW, epoch=1)
                    .on_conflict_do_update(index_elements=["id"],
                                           set_={"epoch": RevocationEpoch.epoch + 1}))


def revocation_epoch(store: OperationalStore) -> int:
    """The counter's value (0 before any revocation)."""
    with store.sessions() as session:
        return session.scalar(select(RevocationEpoch.epoch)
                              .where(RevocationEpoch.id == EPOCH_ROW)) or 0


class RevocationWatch:
    """Calls ``on_revoked`` when the counter has moved; reads it at most every
    ``check_seconds`` (``check`` is cheap to call on every request)."""

    def __init__(self, store: OperationalStore, check_seconds: float,
                 on_revoked: Callable[[], None]) -> None:
        self.store, self.check_seconds, self.on_revoked = store, check_seconds, on_revoked
        self._epoch: int | None = None  # read on the first check (the store may not exist yet)
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def due(self) -> bool:
        """Whether the next :meth:`check` reads the counter (no database access here)."""
        return time.monotonic() - self._checked_at >= self.check_seconds

    def check(self) -> None:
        if not self.due():
            return
        with self._lock:
            if time.monotonic() - self._checked_at < self.check_seconds:
                return  # another thread just checked
            epoch = revocation_epoch(self.store)
            self._checked_at = time.monotonic()
            if epoch != self._epoch:
                if self._epoch is not None:
                    self.on_revoked()
                self._epoch = epoch
