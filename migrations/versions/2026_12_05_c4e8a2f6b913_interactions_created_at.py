"""interactions.created_at index: the call reports read wrap-ups by when they were recorded

Revision ID: c4e8a2f6b913
Revises: 4c8e2a6f9d13
Create Date: 2026-12-05 22:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c4e8a2f6b913"
down_revision: str | None = "4c8e2a6f9d13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_interactions_created_at", "interactions", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_interactions_created_at", table_name="interactions")
