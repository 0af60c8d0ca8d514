"""Search-key ids on case identities, shared login rate limits, the revocation counter.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('case_identities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_key_id', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_case_identities_search_key_id'), ['search_key_id'],
                              unique=False)
    # Hashes made before search keys had ids were made with search_key, id s0.
    op.execute("UPDATE case_identities SET search_key_id = 's0' WHERE name_search IS NOT NULL")

    op.create_table('login_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts'))
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempts_client_at', ['client', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_attempts_at'), ['at'], unique=False)

    op.create_table('revocation_epoch',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revocation_epoch'))
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('revocation_epoch')
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_attempts_at'))
        batch_op.drop_index('ix_login_attempts_client_at')
    op.drop_table('login_attempts')
    with op.batch_alter_table('case_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_identities_search_key_id'))
        batch_op.drop_column('search_key_id')
