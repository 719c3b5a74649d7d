"""customer_emails: a customer's further addresses, lower-case, for matching by e-mail

Revision ID: 9d3b7e5a2c14
Revises: 4c8e2a1f9b60
Create Date: 2026-12-06 00:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d3b7e5a2c14"
down_revision: str | None = "4c8e2a1f9b60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000


def upgrade() -> None:
    table = op.create_table(
        "customer_emails",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_emails_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "email", name=op.f("pk_customer_emails")),
    )
    op.create_index("ix_customer_emails_email", "customer_emails", ["email"], unique=False)
    # The addresses customers already have beyond their first.
    customers = sa.table("customers", sa.column("id", sa.Integer), sa.column("emails", sa.JSON))
    bind = op.get_bind()
    rows: list[dict[str, object]] = []
    query = (
        sa.select(customers.c.id, customers.c.emails)
        .where(sa.cast(customers.c.emails, sa.Text) != "[]")
        .order_by(customers.c.id)
    )
    for customer_id, emails in bind.execute(query):
        for email in dict.fromkeys(str(e).lower() for e in (emails or []) if e):
            rows.append({"customer_id": customer_id, "email": email})
        if len(rows) >= BATCH:
            op.bulk_insert(table, rows)
            rows = []
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_index("ix_customer_emails_email", table_name="customer_emails")
    op.drop_table("customer_emails")
