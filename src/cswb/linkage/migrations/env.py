"""Alembic environment of the linkage store: runs on the connection cswb hands over.

Its version table is ``linkage_alembic_version``, so the linkage zone's schema can share a
PostgreSQL database with the operational store's (``alembic_version``) without either
mistaking the other's revision for its own.
"""

from __future__ import annotations

from alembic import context

from cswb.linkage.store import VERSION_TABLE, metadata, own_table

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - cswb always passes its connection
    raise RuntimeError("the linkage store migrates itself when opened; do not run alembic on it")

context.configure(connection=connection, target_metadata=metadata,
                  version_table=VERSION_TABLE, include_name=own_table,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()
