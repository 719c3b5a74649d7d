"""call reports: interactions.queue (filled from calls) and the daily and monthly rollup

Revision ID: 7b2d9e4f1a36
Revises: c4e8a2f6b913
Create Date: 2026-12-06 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7b2d9e4f1a36"
down_revision: str | None = "c4e8a2f6b913"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 50_000


def _rollup_table(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("whole_month", sa.Boolean(), nullable=False),
        sa.Column("lane", sa.String(length=64), nullable=False),
        *columns,
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )
    op.create_index(f"ix_{name}_span", name, ["whole_month", "day"], unique=False)
    op.create_index(f"ix_{name}_lane_span", name, ["whole_month", "lane", "day"], unique=False)


def _counts(*names: str) -> list[sa.Column[object]]:
    return [sa.Column(n, sa.Integer(), nullable=False) for n in names]


def _fill_queues() -> None:
    """Each wrap-up's queue from its call, a batch of interaction ids at a time."""
    bind = op.get_bind()
    top = bind.execute(sa.text("SELECT max(id) FROM interactions")).scalar() or 0
    fill = sa.text(
        "UPDATE interactions SET queue = (SELECT calls.queue FROM calls"
        " WHERE calls.id = interactions.call_id)"
        " WHERE interactions.id >= :lo AND interactions.id < :hi"
        " AND interactions.call_id IS NOT NULL"
    )
    for lo in range(0, top + 1, BATCH):
        bind.execute(fill, {"lo": lo, "hi": lo + BATCH})


def upgrade() -> None:
    op.add_column("interactions", sa.Column("queue", sa.String(length=64), nullable=True))
    _fill_queues()
    op.create_table(
        "report_call_rollups",
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("rolled_to", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_report_call_rollups")),
    )
    _rollup_table(
        "report_offer_products",
        sa.Column("sku", sa.Text(), nullable=False),
        *_counts("calls", "offered", "accepted", "not_offered"),
    )
    _rollup_table(
        "report_offer_agents",
        sa.Column("agent", sa.String(length=64), nullable=True),
        *_counts("calls", "offered", "accepted", "not_offered"),
    )
    _rollup_table(
        "report_grades",
        sa.Column("agent", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=True),
        *_counts("graded", "grade_sum", "satisfied", "dissatisfied"),
    )


def downgrade() -> None:
    for name in ("report_grades", "report_offer_agents", "report_offer_products"):
        op.drop_index(f"ix_{name}_lane_span", table_name=name)
        op.drop_index(f"ix_{name}_span", table_name=name)
        op.drop_table(name)
    op.drop_table("report_call_rollups")
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("queue")
