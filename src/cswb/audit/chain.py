"""Append-only, hash-chained audit log (design: ``docs/adr/0007-audit-chain.md``).

Writers only INSERT an entry in the same transaction as the action they record: no lock, no
read of the chain's head, so auditing costs one row per action. A *sealer* then chains committed
entries in one short critical section per batch: it gives each the next position (``seq``), the
hash of the entry before it (``prev_hash``) and its own hash over both and every field
(``entry_hash``), and moves the head (``audit_head``). ``verify`` walks the chain by position and
reports every place where it breaks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from cswb.security.principal import Actor
from cswb.storage.operational import OperationalStore
from cswb.storage.operational.models import AuditEntry, AuditHead, utcnow

GENESIS = "0" * 64
"""``prev_hash`` of the first entry."""
SEALER_LOCK = 0x63737762
"""PostgreSQL advisory-lock key held by the sealer while it extends the chain."""
HEAD_ID = 1

_ENTRIES = AuditEntry.metadata.tables["audit_entries"]
_INSERT_ENTRY = insert(_ENTRIES)
_PENDING = (select(_ENTRIES).where(_ENTRIES.c.seq.is_(None)).order_by(_ENTRIES.c.id)
            .limit(bindparam("batch")))
_LINK_ENTRY = (update(_ENTRIES).where(_ENTRIES.c.id == bindparam("entry_id"))
               .values(seq=bindparam("new_seq"), prev_hash=bindparam("new_prev"),
                       entry_hash=bindparam("new_hash")))


def record(session: Session, actor: Actor, action: str, object_type: str,
           object_id: str | None = None, *, fields: Iterable[str] = (),
           outcome: str = "ok") -> None:
    """Insert an audit entry in ``session``'s transaction (committed with the action it
    records). A plain INSERT: no lock, no read of the chain, nothing returned.

    It is a Core statement on the session's connection (one prepared INSERT, no ORM unit of
    work): it runs on every request, reads included.
    """
    principal = actor.principal
    session.connection().execute(_INSERT_ENTRY, {
        "recorded_at": utcnow(), "actor": principal.username, "agency": principal.agency_code,
        "action": action, "object_type": object_type, "object_id": object_id,
        "fields": ",".join(fields), "basis": actor.basis[:200], "source": actor.source[:64],
        "outcome": outcome})


class AuditFields(Protocol):
    """What the hash covers: an :class:`AuditEntry` or a row of ``audit_entries``."""

    @property
    def id(self) -> int: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def agency(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def object_type(self) -> str: ...
    @property
    def object_id(self) -> str | None: ...
    @property
    def fields(self) -> str: ...
    @property
    def basis(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def outcome(self) -> str: ...


def entry_hash(entry: AuditFields, prev_hash: str) -> str:
    """SHA-256 over the previous entry's hash and every field of this entry.

    The position (``seq``) is left out: the links define the order, so a renumbering shows up
    exactly where an entry was inserted, removed or moved, not at every later position.
    """
    content = [prev_hash, entry.id, entry.recorded_at.isoformat(), entry.actor,
               entry.agency, entry.action, entry.object_type, entry.object_id, entry.fields,
               entry.basis, entry.source, entry.outcome]
    canonical = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def seal_pending(store: OperationalStore, batch_size: int = 5000, *, wait: bool = True) -> int:
    """Chain entries committed since the last seal, in batches; return how many were sealed.

    With ``wait=False`` a sealer that finds another one at work returns 0 at once (it will pick
    these entries up).
    """
    total = 0
    while True:
        with store.session() as session:
            if not _take_sealer_lock(session, wait):
                return total
            sealed = _seal_batch(session, batch_size)
        total += sealed
        if sealed < batch_size:
            return total


def _take_sealer_lock(session: Session, wait: bool) -> bool:
    # SQLite: the transaction began with BEGIN IMMEDIATE, so it already holds the write lock.
    if session.get_bind().dialect.name != "postgresql":
        return True
    if wait:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEALER_LOCK})
        return True
    got = session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                          {"key": SEALER_LOCK}).scalar_one()
    return bool(got)


def _seal_batch(session: Session, batch_size: int) -> int:
    """Chain up to ``batch_size`` unsealed entries: one SELECT of plain rows, the hashes, and
    one batched UPDATE (Core executemany), then the head."""
    head = session.get(AuditHead, HEAD_ID)
    seq, prev = (head.seq, head.entry_hash) if head else (0, GENESIS)
    connection = session.connection()
    pending = connection.execute(_PENDING, {"batch": batch_size}).all()
    links = []
    for entry in pending:
        seq += 1
        own = entry_hash(entry, prev)
        links.append({"entry_id": entry.id, "new_seq": seq, "new_prev": prev, "new_hash": own})
        prev = own
    if pending:
        connection.execute(_LINK_ENTRY, links)
        if head is None:
            session.add(AuditHead(id=HEAD_ID, seq=seq, entry_hash=prev))
        else:
            head.seq, head.entry_hash = seq, prev
    return len(pending)


@dataclass(frozen=True)
class ChainBreak:
    """One place where the chain does not hold."""

    seq: int | None
    entry_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"position {self.seq}" if self.seq is not None else "the chain's end"
        entry = f" (entry id {self.entry_id})" if self.entry_id is not None else ""
        return f"{where}{entry}: {self.problem}"


@dataclass
class VerifyReport:
    """What ``cswb audit verify`` found."""

    checked: int = 0
    unsealed: int = 0
    stale_unsealed: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.breaks and self.stale_unsealed == 0


def verify(store: OperationalStore, stale_after: timedelta = timedelta(minutes=10),
           chunk: int = 10_000) -> VerifyReport:
    """Walk the chain by position and report every break (read-only)."""
    report = VerifyReport()
    with store.sessions() as session:
        head = session.get(AuditHead, HEAD_ID)
        report.head_seq = head.seq if head else 0
        report.head_hash = head.entry_hash if head else GENESIS
        expected_seq, prev, last_hash = 1, GENESIS, GENESIS
        after = 0
        while True:
            entries = session.scalars(select(AuditEntry).where(AuditEntry.seq > after)
                                      .order_by(AuditEntry.seq).limit(chunk)).all()
            if not entries:
                break
            for entry in entries:
                assert entry.seq is not None
                report.breaks += _check(entry, expected_seq, prev)
                report.checked += 1
                expected_seq = entry.seq + 1
                prev = last_hash = entry.entry_hash or ""
            after = entries[-1].seq or after
        report.breaks += _check_end(head, expected_seq - 1, last_hash)
        _count_unsealed(session, report, stale_after)
    return report


def _check(entry: AuditEntry, expected_seq: int, prev: str) -> Sequence[ChainBreak]:
    assert entry.seq is not None
    breaks = []
    if entry.seq != expected_seq:
        missing = entry.seq - expected_seq
        breaks.append(ChainBreak(entry.seq, entry.id,
                                 f"{missing} entr{'y' if missing == 1 else 'ies'} missing "
                                 f"before it (positions {expected_seq}-{entry.seq - 1}): "
                                 "deleted"))
    own = entry_hash(entry, entry.prev_hash or "")
    if own != entry.entry_hash:
        breaks.append(ChainBreak(entry.seq, entry.id, "its content does not match its hash: "
                                 "the entry was edited"))
    elif entry.prev_hash != prev and entry.seq == expected_seq:
        breaks.append(ChainBreak(entry.seq, entry.id, "it does not follow the entry before "
                                 "it: an entry was inserted, deleted or reordered here"))
    return breaks


def _check_end(head: AuditHead | None, last_seq: int, last_hash: str) -> list[ChainBreak]:
    if head is None:
        return [] if last_seq == 0 else [ChainBreak(None, None, "the chain's head record is "
                                                    "missing")]
    if head.seq != last_seq or head.entry_hash != last_hash:
        return [ChainBreak(None, None, f"the head records position {head.seq} but the chain "
                           f"ends at position {last_seq}: entries were cut from the end or the "
                           "last entry was changed")]
    return []


def _count_unsealed(session: Session, report: VerifyReport, stale_after: timedelta) -> None:
    from sqlalchemy import func

    report.unsealed = session.scalar(select(func.count()).select_from(AuditEntry)
                                     .where(AuditEntry.seq.is_(None))) or 0
    cutoff = utcnow() - stale_after
    report.stale_unsealed = session.scalar(
        select(func.count()).select_from(AuditEntry)
        .where(AuditEntry.seq.is_(None), AuditEntry.recorded_at < cutoff)) or 0
