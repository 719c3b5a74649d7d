"""Admins' view of the journaling outbox: what is pending, delivered or failed; retry one."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query

from app.deps import SessionDep
from app.errors import Forbidden, NotFound
from app.sources import outbox
from app.users.deps import CurrentUser
from app.users.service import Principal

router = APIRouter()


def _admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise Forbidden("admin role required")


@router.get("/api/outbox")
async def list_outbox(
    principal: CurrentUser,
    session: SessionDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: int = Query(default=50, ge=1, le=500),
) -> dict[str, Any]:
    """``{"counts": {"pending", "delivered", "failed"}, "messages": [...]}``, newest first."""
    _admin(principal)
    rows = await outbox.list_messages(session, status=status, limit=limit)
    return {
        "counts": await outbox.counts(session),
        "messages": [
            {
                "id": r.id,
                "destination": r.destination,
                "event": r.event,
                "status": r.status,
                "attempts": r.attempts,
                "next_attempt_at": r.next_attempt_at.isoformat(),
                "last_error": r.last_error,
                "created_at": r.created_at.isoformat(),
                "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None,
                "payload": r.payload,
            }
            for r in rows
        ],
    }


@router.post("/api/outbox/{message_id}/retry")
async def retry_outbox(
    message_id: str, principal: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    """Make an undelivered message due now, with a fresh count of attempts."""
    _admin(principal)
    if not await outbox.retry(session, message_id):
        raise NotFound(f"no undelivered outbox message {message_id!r}")
    return {"id": message_id, "status": "pending"}
