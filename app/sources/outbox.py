"""The journaling outbox: activities written in the caller's transaction, read by admins.

``enqueue`` adds one row per destination subscribed to the event, on the caller's session or
connection and inside its transaction: the activity exists exactly when the wrap-up it
reports was committed. ``app/sources/deliver.py`` sends them. Each row's ``id`` is the
Standard Webhooks message id (``msg_…``), the same on every attempt.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.customers.records import refs_of
from app.db import utcnow
from app.sources.config import SourcesConfig
from app.sources.models import OutboxMessage

Executor = AsyncSession | AsyncConnection
STATUSES = ("pending", "delivered", "failed")


def new_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def enqueue(
    db: Executor,
    config: SourcesConfig | None,
    event: str,
    data: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> list[str]:
    """Queue ``data`` as a ``call.<event>`` activity for every destination of ``event``;
    returns the message ids. Joins the caller's transaction (never commits)."""
    if config is None:
        return []
    names = config.destinations_for(event)
    if not names:
        return []
    now = now or utcnow()
    payload = {"type": f"call.{event}", "timestamp": now.isoformat(),
               "data": {k: _iso(v) for k, v in data.items()}}  # fmt: skip
    rows: list[dict[str, Any]] = [
        {"id": new_id(), "destination": name, "event": event, "payload": payload,
         "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
        for name in names
    ]  # fmt: skip
    await db.execute(insert(OutboxMessage), rows)
    return [str(row["id"]) for row in rows]


async def enqueue_wrapup(
    db: Executor,
    config: SourcesConfig | None,
    call: Mapping[str, Any],
    interaction: Mapping[str, Any],
) -> list[str]:
    """The wrap-up activity: the call, the customer (with refs per source) and the outcome."""
    if config is None or not config.destinations_for("wrapup"):
        return []
    customer_id = interaction.get("customer_id", call.get("customer_id"))
    data = {
        "call_id": call.get("id"),
        "caller": call.get("caller_e164") or call.get("caller_raw"),
        "queue": call.get("queue"),
        "agent": interaction.get("agent") or call.get("agent"),
        "customer_id": customer_id,
        "customer_refs": await refs_of(db, customer_id),
        "disposition": interaction.get("disposition"),
        "notes": interaction.get("notes"),
        "satisfaction": interaction.get("satisfaction"),
        "offer_outcomes": list(interaction.get("offer_outcomes") or []),
        "answered_at": _iso(call.get("answered_at")),
        "ended_at": _iso(call.get("ended_at")),
        "wrapped_up_at": _iso(interaction.get("created_at")),
    }
    return await enqueue(db, config, "wrapup", data)


async def list_messages(
    db: Executor, *, status: str | None = None, limit: int = 50
) -> Sequence[Any]:
    """The newest messages (optionally of one status), newest first."""
    query = select(OutboxMessage.__table__).order_by(OutboxMessage.created_at.desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    return (await db.execute(query)).all()


async def counts(db: Executor) -> dict[str, int]:
    query = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    found = {status: int(n) for status, n in (await db.execute(query)).all()}
    return {status: found.get(status, 0) for status in STATUSES}


async def retry(db: Executor, message_id: str) -> bool:
    """Make a failed (or pending) message due now, with a fresh count of attempts.
    A delivered message is never sent again: False, as for an unknown id."""
    result = await db.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status != "delivered")
        .values(status="pending", attempts=0, next_attempt_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))
