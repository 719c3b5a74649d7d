"""customer-base reports: retention per (month, segment), value per (day, value tier)

Revision ID: 4c8e2a6f9d13
Revises: 9d3b7e5a2c14
Create Date: 2026-12-05 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "4c8e2a6f9d13"
down_revision: str | None = "9d3b7e5a2c14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_retention_months",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("segment", sa.String(length=20), nullable=False),
        sa.Column("active_start", sa.Integer(), nullable=False),
        sa.Column("defected", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("won_back", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("defection_intervals", sa.Float(), nullable=False),
        sa.Column("computed_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("month", "segment", name=op.f("pk_report_retention_months")),
    )
    op.create_table(
        "report_value_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value_tier", sa.String(length=10), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("clv_forecast", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("clv_historic", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("computed_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "value_tier", name=op.f("pk_report_value_days")),
    )


def downgrade() -> None:
    op.drop_table("report_value_days")
    op.drop_table("report_retention_months")
