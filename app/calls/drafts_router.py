"""Wrap-up drafts over HTTP, the agent's pending wrap-ups, and the dispositions to offer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from app.calls import drafts
from app.deps import SessionDep
from app.queues import dispositions
from app.users.deps import CurrentAgent

router = APIRouter(tags=["calls"])
CallId = Annotated[str, Path(max_length=200)]


@router.get("/api/calls/mine/pending")
async def pending_wrapups(session: SessionDep, agent: CurrentAgent) -> dict[str, Any]:
    """Calls the signed-in agent answered and has not wrapped up yet (with their drafts)."""
    return {
        "calls": await drafts.pending_wrapups(session, agent.username),
        "expires_after_hours": drafts.PENDING_WRAPUP_HOURS,
    }


@router.get("/api/calls/{call_id}/draft")
async def get_draft(session: SessionDep, agent: CurrentAgent, call_id: CallId) -> dict[str, Any]:
    """The wrap-up typed so far for this call (empty when none), for its agent, an agent it
    is offered to (a transfer) or a supervisor."""
    return await drafts.get_draft(session, call_id, agent)


@router.put("/api/calls/{call_id}/draft")
async def save_draft(
    session: SessionDep, agent: CurrentAgent, call_id: CallId, body: drafts.DraftIn
) -> dict[str, Any]:
    """Save the wrap-up form as it stands (the page does this as the agent types)."""
    return await drafts.save_draft(session, call_id, agent, body)


@router.get("/api/dispositions")
async def list_dispositions(session: SessionDep, _: CurrentAgent) -> dict[str, Any]:
    """``{"default": [{"code", "label"}], "queues": {name: [...]}}``."""
    return await dispositions.dispositions_by_queue(session)
