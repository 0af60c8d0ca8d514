"""Alembic environment: runs on the connection cswb hands over (never an alembic.ini URL)."""

from __future__ import annotations

from alembic import context

from cswb.storage.operational.engine import own_table
from cswb.storage.operational.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - cswb always passes its connection
    raise RuntimeError("run migrations through cswb (`cswb db upgrade`), not the alembic command")

context.configure(connection=connection, target_metadata=Base.metadata,
                  include_name=own_table,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()
