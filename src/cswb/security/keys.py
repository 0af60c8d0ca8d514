"""Key management of the identifying fields: which keys are in use, and rotation.

Rotation re-encrypts, in short batches, every ciphertext not sealed with the current key. Each
batch is its own transaction, so readers keep working throughout: a row is always sealed with
either the old or the new key, and the keyring holds both until the rotation is done. Design:
``docs/adr/0008-field-keys.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from cswb.audit import record
from cswb.cases.service import open_identity, seal_identity
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
