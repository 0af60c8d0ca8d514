"""The search key id of each keyed hash (ADR 0011), and the index retention reads by.

Revision ID: l002
Revises: l001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "l002"
down_revision: str | Sequence[str] | None = "l001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Hashes made before search keys had ids were made with search_key, id s0.
    with op.batch_alter_table("linkage_values") as batch:
        batch.add_column(sa.Column("hash_key_id", sa.String(40), nullable=False,
                                   server_default="s0"))
    op.create_index("ix_linkage_linked_at", "linkage_values", ["linked_at"])


def downgrade() -> None:
    op.drop_index("ix_linkage_linked_at", "linkage_values")
    with op.batch_alter_table("linkage_values") as batch:
        batch.drop_column("hash_key_id")
