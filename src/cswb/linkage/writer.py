"""An ingest batch's identifying values into the linkage store, chunk by chunk.

DuckDB selects, in one pass over the file, the distinct (record id, column, value) triples of
the records the batch stores; here each chunk is hashed (each distinct value once), sealed
(one AES-GCM call per value: each is bound to its own record) and inserted in one statement.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from cswb.ingest.mapping import Mapping
from cswb.linkage.store import LinkageStore, open_linkage_store
from cswb.linkage.values import context, hashes, linkage_keyring
from cswb.security.crypto import Keyring
from cswb.settings import Settings


@dataclass
class LinkageWriter:
    """Writes one mapping's linkage columns; opened before the batch so a missing keyring
    stops it before anything is read."""

    store: LinkageStore
    keyring: Keyring
    mapping: Mapping
    chunk_rows: int
    written: int = 0

    @classmethod
    def open(cls, mapping: Mapping, settings: Settings) -> LinkageWriter:
        keyring = linkage_keyring(settings)
        return cls(open_linkage_store(settings), keyring, mapping, settings.linkage_chunk_rows)

    def write(self, batch_id: str, reader: pa.RecordBatchReader) -> int:
        """Write every (rid, column_name, value) row of ``reader`` as pending; rows offered."""
        offered = self.store.write_pending(self._rows(batch_id, chunk) for chunk in reader)
        self.written += offered
        return offered

    def _rows(self, batch_id: str, chunk: pa.RecordBatch) -> list[tuple[str, ...]]:
        """One chunk's rows in :data:`~cswb.linkage.store.WRITTEN` order."""
        rids = chunk.column("rid").to_pylist()
        columns = chunk.column("column_name").to_pylist()
        values = chunk.column("value").to_pylist()
        source, ident = self.mapping.name, self.mapping.identifying
        keyed: dict[str, list[str | None]] = {}
        for column in set(columns):
            picked = [v for c, v in zip(columns, values, strict=True) if c == column]
            keyed[column] = hashes(self.keyring, picked, ident.kind(column))
        taken = {column: iter(h) for column, h in keyed.items()}
        key_id, encrypt = self.keyring.current_id, self.keyring.encrypt
        hash_key_id = self.keyring.search_current_id
        rows: list[tuple[str, ...]] = []
        for rid, column, value in zip(rids, columns, values, strict=True):
            value_hash = next(taken[column])
            if value_hash is None:  # nothing identifying left once normalised (e.g. "--")
                continue
            rows.append((source, rid, column, ident.kind(column), value_hash,
                         encrypt(value, context(source, rid, column)), key_id, batch_id,
                         hash_key_id))
        return rows
