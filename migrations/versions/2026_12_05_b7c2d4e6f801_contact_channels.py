"""contact channels: calls.channel (phone, chat, email, sms, social)

Revision ID: b7c2d4e6f801
Revises: 8b2d4f6a1c37
Create Date: 2026-12-05 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7c2d4e6f801"
down_revision: str | None = "8b2d4f6a1c37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every call so far was a phone call; the server default fills them in one statement.
    with op.batch_alter_table("calls") as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(16), server_default=sa.text("'phone'"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_column("channel")
