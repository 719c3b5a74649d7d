"""working day: queues.wrap_up_s; call_events.raw nullable (screenpop's own expiry events)

Revision ID: 7d3e9a1c5b20
Revises: d5a9e2c7b310
Create Date: 2026-12-04 23:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7d3e9a1c5b20"
down_revision: str | None = "d5a9e2c7b310"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("queues") as batch:
        batch.add_column(
            sa.Column("wrap_up_s", sa.Integer(), nullable=False, server_default=sa.text("60"))
        )
    with op.batch_alter_table("call_events") as batch:
        batch.alter_column("raw", existing_type=_JSON, nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("call_events") as batch:
        batch.alter_column("raw", existing_type=_JSON, nullable=False)
    with op.batch_alter_table("queues") as batch:
        batch.drop_column("wrap_up_s")
