"""Key rotation of the linkage zone: values re-sealed under the current field key, keyed
hashes recomputed under the current search key.

Both go in short batches, a transaction each, selecting only rows not yet under the current
key, so they are idempotent and resume where a stopped run left off. Readers keep working
throughout: a sealed value names its key and the keyring holds the old and the new one; a
search looks for the hash under every search key (:func:`cswb.linkage.values.value_hashes`).
Design: ``docs/adr/0011-search-keys.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, tuple_, update

from cswb.ingest.mapping import LinkageKind
from cswb.linkage.store import LinkageStore, linkage_values
from cswb.linkage.values import context, normalise, purpose
from cswb.security.crypto import Keyring

t = linkage_values.c


@dataclass(frozen=True)
class LinkageKeyReport:
    """Rows re-sealed or rehashed (``merged``: rows whose value the record already held
    under the new search key, deleted rather than duplicated)."""

    current_key: str
    changed: int
    batches: int
    merged: int = 0


def key_usage(store: LinkageStore) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per field key id and rows per search key id."""
    with store.engine.connect() as con:
        sealed = con.execute(select(t.key_id, func.count()).group_by(t.key_id)).all()
        hashed = con.execute(select(t.hash_key_id, func.count())
                             .group_by(t.hash_key_id)).all()
    return ({str(k): int(n) for k, n in sealed}, {str(k): int(n) for k, n in hashed})


def rotate_values(store: LinkageStore, keyring: Keyring, batch_size: int = 500,
                  progress: Callable[[int], None] | None = None) -> LinkageKeyReport:
    """Re-seal every value not sealed with the current field key."""
    done = batches = 0
    while True:
        with store.engine.begin() as con:
            rows = con.execute(select(t.id, t.source, t.source_record_id, t.column_name,
                                      t.value_sealed, t.key_id)
                               .where(t.key_id != keyring.current_id)
                               .order_by(t.id).limit(batch_size)).all()
            for row_id, source, record_id, column, sealed, old_key in rows:
                where = context(source, record_id, column)
                resealed = keyring.encrypt(keyring.decrypt(sealed, where), where)
                con.execute(update(linkage_values)
                            .where(t.id == row_id, t.key_id == old_key)
                            .values(value_sealed=resealed, key_id=keyring.current_id))
        if not rows:
            return LinkageKeyReport(keyring.current_id, done, batches)
        done, batches = done + len(rows), batches + 1
        if progress is not None:
            progress(done)


def rehash_values(store: LinkageStore, keyring: Keyring, batch_size: int = 500,
                  progress: Callable[[int], None] | None = None) -> LinkageKeyReport:
    """Recompute every keyed hash not made with the current search key, from the opened
    value. A record that already holds the value under the new key (an ingest during the
    rotation) keeps that row; the old one is deleted, so a value is never held twice."""
    current = keyring.search_current_id
    done = batches = merged = 0
    while True:
        with store.engine.begin() as con:
            rows = con.execute(select(t.id, t.source, t.source_record_id, t.column_name,
                                      t.kind, t.value_sealed)
                               .where(t.hash_key_id != current)
                               .order_by(t.id).limit(batch_size)).all()
            fresh = {row.id: _new_hash(keyring, row) for row in rows}
            held = _already_held(con, rows, fresh)
            for row in rows:
                identity = (row.source, row.source_record_id, row.column_name, fresh[row.id])
                if identity in held:
                    con.execute(delete(linkage_values).where(t.id == row.id))
                    merged += 1
                    continue
                held.add(identity)
                con.execute(update(linkage_values).where(t.id == row.id)
                            .values(value_hash=fresh[row.id], hash_key_id=current))
        if not rows:
            return LinkageKeyReport(current, done, batches, merged)
        done, batches = done + len(rows), batches + 1
        if progress is not None:
            progress(done)


def _new_hash(keyring: Keyring, row: Any) -> str:
    kind: LinkageKind = row.kind
    value = keyring.decrypt(row.value_sealed,
                            context(row.source, row.source_record_id, row.column_name))
    return keyring.search_hash(normalise(value, kind), purpose(kind))


def _already_held(con: Connection, rows: Sequence[Any], fresh: dict[int, str]
                  ) -> set[tuple[str, str, str, str]]:
    """(source, record, column, hash) of rows already holding one of the new hashes."""
    if not rows:
        return set()
    wanted = [(r.source, r.source_record_id, r.column_name, fresh[r.id]) for r in rows]
    found = con.execute(select(t.source, t.source_record_id, t.column_name, t.value_hash)
                        .where(tuple_(t.source, t.source_record_id, t.column_name,
                                      t.value_hash).in_(wanted))).all()
    return {(a, b, c, d) for a, b, c, d in found}
