"""wrap-up legs: one interaction and one draft per call and agent (a transfer has two legs)

Revision ID: b7c41e9d2a60
Revises: 5af4526f0c0c
Create Date: 2026-12-05 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7c41e9d2a60"
down_revision: str | None = "5af4526f0c0c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _primary_key(columns: list[str]) -> None:
    """wrapup_drafts' primary key set to ``columns``."""
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot alter a key: the batch copies the table into one with the new key.
        with op.batch_alter_table("wrapup_drafts", recreate="always") as batch:
            batch.drop_constraint("pk_wrapup_drafts", type_="primary")
            batch.create_primary_key("pk_wrapup_drafts", columns)
        return
    name = sa.inspect(op.get_bind()).get_pk_constraint("wrapup_drafts")["name"]
    op.drop_constraint(name, "wrapup_drafts", type_="primary")
    op.create_primary_key("pk_wrapup_drafts", "wrapup_drafts", columns)


def upgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.drop_constraint("uq_interactions_call_id", type_="unique")
        batch.create_unique_constraint("uq_interactions_call_id_agent", ["call_id", "agent"])
    with op.batch_alter_table("wrapup_drafts") as batch:
        batch.alter_column(
            "updated_by",
            new_column_name="username",
            existing_type=sa.String(64),
            existing_nullable=False,
        )
    _primary_key(["call_id", "username"])


def downgrade() -> None:
    # One row per call again: the newest draft, the first wrap-up.
    op.execute(
        "DELETE FROM wrapup_drafts WHERE EXISTS (SELECT 1 FROM wrapup_drafts AS newer"
        " WHERE newer.call_id = wrapup_drafts.call_id"
        " AND (newer.updated_at > wrapup_drafts.updated_at"
        " OR (newer.updated_at = wrapup_drafts.updated_at"
        " AND newer.username > wrapup_drafts.username)))"
    )
    op.execute(
        "DELETE FROM interactions WHERE call_id IS NOT NULL AND EXISTS (SELECT 1 FROM"
        " interactions AS first WHERE first.call_id = interactions.call_id"
        " AND first.id < interactions.id)"
    )
    _primary_key(["call_id"])
    with op.batch_alter_table("wrapup_drafts") as batch:
        batch.alter_column(
            "username",
            new_column_name="updated_by",
            existing_type=sa.String(64),
            existing_nullable=False,
        )
    with op.batch_alter_table("interactions") as batch:
        batch.drop_constraint("uq_interactions_call_id_agent", type_="unique")
        batch.create_unique_constraint("uq_interactions_call_id", ["call_id"])
