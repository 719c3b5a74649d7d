"""insight runs: what each train run covered, and the state a --since run reuses

Revision ID: 5e1a7c3d9b42
Revises: c41f0a7e2b19
Create Date: 2026-11-23 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import app.db

revision: str = "5e1a7c3d9b42"
down_revision: str | None = "c41f0a7e2b19"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "insight_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("as_of", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("since", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("next_needs", sa.Integer(), nullable=False),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insight_runs")),
    )


def downgrade() -> None:
    op.drop_table("insight_runs")
