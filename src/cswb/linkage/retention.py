"""Retention of the linkage zone: identifying values are deleted ``retention_linkage_days``
after they were linked.

Privacy first, nothing is left of a purged value: not the sealed value, and not its keyed
hash either (a phone number's hash can be matched by anyone holding the search key, and
the space of phone numbers is small enough to try them all). Each purged batch is one audit
entry in the operational store, written in the transaction that commits after the linkage
rows are deleted. Running again purges nothing new.
"""

from __future__ import annotations

from datetime import datetime

from cswb.audit import record
from cswb.linkage.store import linkage_store_exists, open_linkage_store
from cswb.security.principal import Actor
from cswb.settings import Settings
from cswb.storage.operational import OperationalStore

PURGED_FIELDS = ("value_sealed", "value_hash")


def purge_linkage_values(settings: Settings, store: OperationalStore, actor: Actor,
                         cutoff: datetime, dry_run: bool) -> int:
    """Delete (or, with ``dry_run``, count) the values linked at or before ``cutoff``."""
    if not linkage_store_exists(settings):
        return 0
    linkage = open_linkage_store(settings)
    try:
        batches = linkage.batches_linked_before(cutoff)
        if dry_run:
            return sum(rows for _batch, rows in batches)
        purged = 0
        for batch_id, _rows in batches:
            with store.session() as session:
                gone = linkage.purge_batch(batch_id, cutoff)
                if gone:
                    record(session, actor, "retention.purge", "linkage_batch", batch_id,
                           fields=PURGED_FIELDS)
            purged += gone
        return purged
    finally:
        linkage.dispose()
