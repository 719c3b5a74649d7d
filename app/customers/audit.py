"""The profile-view audit: who may name a call as the reason for a view, and reading the log.

A view with a ``call_id`` is allowed to the agent who is or was on that call (its agent, an
agent it is offered to, or one it was popped to), to a supervisor of the call's queue (a
supervisor with no queues supervises every queue) and to an admin; anyone else gets 403, and
an unknown call is a 404. Admins read the log by customer, user and UTC day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import csv_export
from app.calls.models import Call, PopDelivery
from app.customers.models import ProfileView
from app.errors import Forbidden, NotFound
from app.users.models import User
from app.users.service import Principal

AUDIT_LIMIT = 10_000
COLUMNS = ("viewed_at", "username", "customer_id", "call_id", "reason")


async def check_call_reason(session: AsyncSession, user: Principal, call_id: str) -> None:
    """Raise ``NotFound`` or ``Forbidden`` unless ``user`` may view a profile for this call."""
    call = (
        await session.execute(
            select(Call.agent, Call.offered_to, Call.queue).where(Call.id == call_id)
        )
    ).one_or_none()
    if call is None:
        raise NotFound(f"call_id: call {call_id!r} not found")
    if user.role == "admin" or user.username == call.agent:
        return
    if user.username in (call.offered_to or []):
        return
    popped = await session.scalar(
        select(PopDelivery.username).where(
            PopDelivery.call_id == call_id, PopDelivery.username == user.username
        )
    )
    if popped is not None:
        return
    if user.role == "supervisor":
        queues = await session.scalar(select(User.queues).where(User.username == user.username))
        if not queues or (call.queue is not None and call.queue in queues):
            return
    raise Forbidden(f"call_id: {user.username!r} is not and was not on call {call_id!r}")


async def profile_views(
    session: AsyncSession,
    *,
    customer_id: int | None = None,
    username: str | None = None,
    day: date | None = None,
) -> list[dict[str, Any]]:
    """Audit rows, newest first (at most ``AUDIT_LIMIT``), filtered by what is given."""
    query = select(*(getattr(ProfileView, c) for c in COLUMNS))
    if customer_id is not None:
        query = query.where(ProfileView.customer_id == customer_id)
    if username:
        query = query.where(ProfileView.username == username)
    if day is not None:
        start = datetime.combine(day, time(), tzinfo=UTC)
        query = query.where(
            ProfileView.viewed_at >= start, ProfileView.viewed_at < start + timedelta(days=1)
        )
    query = query.order_by(ProfileView.viewed_at.desc(), ProfileView.id.desc()).limit(AUDIT_LIMIT)
    rows = (await session.execute(query)).all()
    return [
        {**row._asdict(), "viewed_at": row.viewed_at.astimezone(UTC).isoformat()} for row in rows
    ]


def as_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV (call ids come from the PBX: no formulas, app.csv_export)."""
    return csv_export.as_csv(COLUMNS, rows)
