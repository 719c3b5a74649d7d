"""calls: journal 'applied' flag, agent and pop-delivery indexes

Revision ID: c41f0a7e2b19
Revises: 91154a9f7332
Create Date: 2026-11-23 13:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c41f0a7e2b19"
down_revision: str | None = "91154a9f7332"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_events") as batch:
        batch.add_column(
            sa.Column("applied", sa.Boolean(), nullable=False, server_default=sa.text("true"))
        )
    op.create_index(
        "ix_call_events_unapplied",
        "call_events",
        ["call_id"],
        postgresql_where=sa.text("NOT applied"),
        sqlite_where=sa.text("applied = 0"),
    )
    op.create_index("ix_calls_agent_first_seen_at", "calls", ["agent", "first_seen_at"])
    op.create_index("ix_pop_deliveries_username", "pop_deliveries", ["username"])


def downgrade() -> None:
    op.drop_index("ix_pop_deliveries_username", table_name="pop_deliveries")
    op.drop_index("ix_calls_agent_first_seen_at", table_name="calls")
    op.drop_index("ix_call_events_unapplied", table_name="call_events")
    with op.batch_alter_table("call_events") as batch:
        batch.drop_column("applied")
