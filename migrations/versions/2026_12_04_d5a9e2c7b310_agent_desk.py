"""agent desk: customer search indexes, wrap-up drafts, per-queue dispositions, rating kind

Revision ID: d5a9e2c7b310
Revises: 5e1a7c3d9b42
Create Date: 2026-12-04 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d5a9e2c7b310"
down_revision: str | None = "5e1a7c3d9b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# The desk's customer search on PostgreSQL (SQLite scans): a trigram index serves
# LIKE '%part%' on names; text_pattern_ops indexes serve LIKE 'start%' on names and e-mails.
SEARCH_INDEXES = {
    "ix_customers_name_trgm": "USING gin (lower(name) gin_trgm_ops)",
    "ix_customers_name_prefix": "(lower(name) text_pattern_ops)",
    "ix_customers_email_prefix": "(lower(email) text_pattern_ops)",
}


def upgrade() -> None:
    op.create_table(
        "wrapup_drafts",
        sa.Column("call_id", sa.String(200), primary_key=True),
        sa.Column("disposition", sa.String(64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("satisfaction", sa.SmallInteger(), nullable=True),
        sa.Column("satisfaction_kind", sa.String(8), nullable=True),
        sa.Column("offers", JSON, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("queues") as batch:
        batch.add_column(sa.Column("dispositions", JSON, nullable=True))
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("satisfaction_kind", sa.String(8), nullable=True))
    op.create_index("ix_calls_customer_id_first_seen_at", "calls", ["customer_id", "first_seen_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, definition in SEARCH_INDEXES.items():
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON customers {definition}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in SEARCH_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index("ix_calls_customer_id_first_seen_at", table_name="calls")
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("satisfaction_kind")
    with op.batch_alter_table("queues") as batch:
        batch.drop_column("dispositions")
    op.drop_table("wrapup_drafts")
