"""queues.ring_timeout_s: an offer with no answer and no agent page rings out after it

Revision ID: e3f1a9c7d254
Revises: b7c2d4e6f801
Create Date: 2026-12-05 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e3f1a9c7d254"
down_revision: str | None = "b7c2d4e6f801"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("queues") as batch:
        batch.add_column(
            sa.Column("ring_timeout_s", sa.Integer(), nullable=False, server_default=sa.text("30"))
        )


def downgrade() -> None:
    with op.batch_alter_table("queues") as batch:
        batch.drop_column("ring_timeout_s")
