"""Key management of the identifying fields: which keys are in use, rotation and rehash.

Rotation re-encrypts, in short batches, every ciphertext not sealed with the current key. Each
batch is its own transaction, so readers keep working throughout: a row is always sealed with
either the old or the new key, and the keyring holds both until the rotation is done. Design:
``docs/adr/0008-field-keys.md``.

Rehash recomputes, the same way, every keyed hash (the name search) not made with the current
search key, from the decrypted value; searches look for the hash under every search key of the
keyring meanwhile, so they keep finding every record. Design: ``docs/adr/0011-search-keys.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update

from cswb.audit import record
from cswb.cases.service import field_context, open_identity, seal_identity
from cswb.linkage.keys import LinkageKeyReport, rehash_values, rotate_values
from cswb.linkage.store import LinkageStore
from cswb.security.crypto import Keyring
from cswb.security.policy import Action, authorize
from cswb.security.principal import Actor
from cswb.storage.operational import OperationalStore
from cswb.storage.operational.models import CaseIdentity


def key_usage(store: OperationalStore) -> dict[str, int]:
    """How many identity records each key id seals."""
    with store.sessions() as session:
        rows = session.execute(select(CaseIdentity.key_id, func.count())
                                .group_by(CaseIdentity.key_id)).all()
    return {key_id: count for key_id, count in rows}


@dataclass(frozen=True)
class RotationReport:
    current_key: str
    re_encrypted: int
    batches: int


def rotate(store: OperationalStore, keyring: Keyring, actor: Actor, batch_size: int = 500,
           progress: Callable[[int], None] | None = None) -> RotationReport:
    """Re-encrypt every identity record under the current key; idempotent."""
    authorize(actor.principal, Action.KEYS_ROTATE)
    done = batches = 0
    while True:
        with store.session() as session:
            rows = session.scalars(select(CaseIdentity)
                                   .where(CaseIdentity.key_id != keyring.current_id)
                                   .order_by(CaseIdentity.case_id).limit(batch_size)
                                   .with_for_update()).all()
            for identity in rows:
                seal_identity(identity, keyring, open_identity(identity, keyring))
            if rows:
                record(session, actor, "keys.rotate", "case_identities", None,
                       fields=("name", "date_of_birth", "address"))
        if not rows:
            return RotationReport(keyring.current_id, done, batches)
        done += len(rows)
        batches += 1
        if progress is not None:
            progress(done)


def search_key_usage(store: OperationalStore) -> dict[str, int]:
    """How many identity records have their name's keyed hash under each search key id."""
    with store.sessions() as session:
        rows = session.execute(select(CaseIdentity.search_key_id, func.count())
                               .where(CaseIdentity.name_search.is_not(None))
                               .group_by(CaseIdentity.search_key_id)).all()
    return {key_id or "(none)": count for key_id, count in rows}


@dataclass(frozen=True)
class RehashReport:
    current_search_key: str
    rehashed: int
    batches: int


def rehash(store: OperationalStore, keyring: Keyring, actor: Actor, batch_size: int = 500,
           progress: Callable[[int], None] | None = None) -> RehashReport:
    """Recompute every case identity's name hash under the current search key; idempotent
    and resumable (each batch is its own transaction; done rows are not selected again)."""
    authorize(actor.principal, Action.KEYS_ROTATE)
    current = keyring.search_current_id
    stale = (CaseIdentity.name_search.is_not(None),
             or_(CaseIdentity.search_key_id.is_(None), CaseIdentity.search_key_id != current))
    done = batches = 0
    while True:
        with store.session() as session:
            rows = session.execute(select(CaseIdentity.case_id, CaseIdentity.name_ct,
                                          CaseIdentity.name_search)
                                   .where(*stale).order_by(CaseIdentity.case_id)
                                   .limit(batch_size).with_for_update()).all()
            for case_id, name_ct, old_hash in rows:
                name = keyring.decrypt(name_ct or "", field_context("name", case_id))
                # No version bump: the details did not change. A row edited meanwhile is
                # already under the current key and is left as it is.
                session.execute(update(CaseIdentity)
                                .where(CaseIdentity.case_id == case_id,
                                       CaseIdentity.name_search == old_hash)
                                .values(name_search=keyring.search_hash(name, "name"),
                                        search_key_id=current))
            if rows:
                record(session, actor, "keys.rehash", "case_identities", None,
                       fields=("name_search",))
        if not rows:
            return RehashReport(current, done, batches)
        done += len(rows)
        batches += 1
        if progress is not None:
            progress(done)


def rotate_linkage(store: OperationalStore, linkage: LinkageStore, keyring: Keyring,
                   actor: Actor, *, batch_size: int = 500,
                   progress: Callable[[int], None] | None = None) -> LinkageKeyReport:
    """Re-seal the linkage zone's values under the current field key (an audit entry per
    batch); idempotent and resumable."""
    authorize(actor.principal, Action.KEYS_ROTATE)
    return rotate_values(linkage, keyring, batch_size,
                         _audited(store, actor, "keys.rotate", ("value_sealed",), progress))


def rehash_linkage(store: OperationalStore, linkage: LinkageStore, keyring: Keyring,
                   actor: Actor, *, batch_size: int = 500,
                   progress: Callable[[int], None] | None = None) -> LinkageKeyReport:
    """Recompute the linkage zone's keyed hashes under the current search key (an audit
    entry per batch); idempotent and resumable."""
    authorize(actor.principal, Action.KEYS_ROTATE)
    return rehash_values(linkage, keyring, batch_size,
                         _audited(store, actor, "keys.rehash", ("value_hash",), progress))


def _audited(store: OperationalStore, actor: Actor, action: str, fields: tuple[str, ...],
             progress: Callable[[int], None] | None) -> Callable[[int], None]:
    def batch_done(done: int) -> None:
        with store.session() as session:
            record(session, actor, action, "linkage_values", None, fields=fields)
        if progress is not None:
            progress(done)
    return batch_done
