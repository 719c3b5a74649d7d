"""customer_phones.label holds a whole source name (64 characters, as sources are named)

Revision ID: 4c8e2a1f9b60
Revises: e3f1a9c7d254
Create Date: 2026-12-06 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4c8e2a1f9b60"
down_revision: str | None = "e3f1a9c7d254"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_phones") as batch:
        batch.alter_column(
            "label", existing_type=sa.String(20), type_=sa.String(64), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_phones") as batch:
        batch.alter_column(
            "label", existing_type=sa.String(64), type_=sa.String(20), existing_nullable=False
        )
