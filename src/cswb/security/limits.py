"""Login rate limits shared by every server process, kept in the operational store.

Each accepted attempt is a row (a keyed hash of the client address and the time); an attempt
is accepted while fewer than ``limit`` rows of that client fall in the sliding window. The
check and the insert are one transaction serialised per client (SQLite's write lock;
PostgreSQL's transaction-scoped advisory lock on the client's hash), so two workers can never
both accept the ``limit``-th attempt. Refused attempts are not rows, as before: a client is
let in again as soon as its oldest accepted attempt leaves the window.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cswb.storage.operational import OperationalStore
from cswb.storage.operational.models import LoginAttempt, utcnow


class SharedRateLimiter:
    """At most ``limit`` accepted events per client in any ``window`` seconds, across every
    process sharing ``store``."""

    def __init__(self, store: OperationalStore, limit: int, key: bytes,
                 window: float = 60.0) -> None:
        self.store, self.limit, self.window = store, limit, timedelta(seconds=window)
        self._key = key
        self._swept_at: datetime | None = None
        self._sweep_lock = threading.Lock()

    def allow(self, client: str) -> bool:
        """Record and accept an attempt of ``client``, or refuse it (nothing recorded)."""
        digest = hmac.new(self._key, client.encode(), hashlib.sha256).hexdigest()
        now = utcnow()
        with self.store.session() as session:
            self._serialise(session, digest)
            recent = session.scalar(select(func.count()).select_from(LoginAttempt)
                                    .where(LoginAttempt.client == digest,
                                           LoginAttempt.at > now - self.window)) or 0
            accepted = recent < self.limit
            if accepted:
                session.add(LoginAttempt(client=digest, at=now))
        self._sweep(now)
        return accepted

    def _serialise(self, session: Session, digest: str) -> None:
        """Make concurrent checks of one client wait for each other (SQLite: the write lock
        taken by BEGIN IMMEDIATE already does)."""
        if self.store.dialect == "postgresql":
            lock_id = int.from_bytes(bytes.fromhex(digest[:16]), "big", signed=True)
            session.execute(select(func.pg_advisory_xact_lock(lock_id)))

    def _sweep(self, now: datetime) -> None:
        """Delete attempts out of the window, at most once a window per process."""
        with self._sweep_lock:
            if self._swept_at is not None and now - self._swept_at < self.window:
                return
            self._swept_at = now
        with self.store.session() as session:
            session.execute(delete(LoginAttempt).where(LoginAttempt.at <= now - self.window))
