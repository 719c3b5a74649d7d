"""systems of record: customer refs per source, billing balances, sync cursors, the outbox

Revision ID: 5af4526f0c0c
Revises: 7d3e9a1c5b20
Create Date: 2026-12-04 21:24:49.764426
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.db

revision: str = '5af4526f0c0c'
down_revision: str | None = '7d3e9a1c5b20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('destination', sa.String(length=64), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    op.create_table('sync_cursors',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('last_run', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', 'entity', name=op.f('pk_sync_cursors'))
    )
    op.create_table('customer_refs',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('ref', sa.String(length=128), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_refs_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('source', 'ref', name=op.f('pk_customer_refs'))
    )
    with op.batch_alter_table('customer_refs', schema=None) as batch_op:
        batch_op.create_index('ix_customer_refs_customer_id', ['customer_id'], unique=False)

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('overdue', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(sa.Column('balance_as_of', app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('balance_source', sa.String(length=64), nullable=True))

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('emails', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('account_manager', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), server_default=sa.text("'{}'"), nullable=False))
        batch_op.add_column(sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('currency', sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=32), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('status')
        batch_op.drop_column('currency')
        batch_op.drop_column('source')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
        batch_op.drop_column('attributes')
        batch_op.drop_column('account_manager')
        batch_op.drop_column('emails')

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('balance_source')
        batch_op.drop_column('balance_as_of')
        batch_op.drop_column('overdue')

    with op.batch_alter_table('customer_refs', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_refs_customer_id')

    op.drop_table('customer_refs')
    op.drop_table('sync_cursors')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_next_attempt_at')

    op.drop_table('outbox')
