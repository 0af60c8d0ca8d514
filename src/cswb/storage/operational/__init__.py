"""The operational store: cases, accounts, audit log (SQLAlchemy; SQLite or PostgreSQL).

Open it with :func:`open_operational_store` from the settings; the schema is created and
upgraded only by Alembic (:meth:`OperationalStore.upgrade`, ``cswb db upgrade``).
"""

from cswb.storage.operational.engine import OperationalStore, open_operational_store

__all__ = ["OperationalStore", "open_operational_store"]
