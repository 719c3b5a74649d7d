"""Wrap-up drafts over HTTP, the agent's pending wrap-ups, and the dispositions to offer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from app.calls import drafts
from app.calls.planning import Planner
from app.deps import SessionDep, StateDep
from app.queues import dispositions
from app.users.deps import CurrentAgent

router = APIRouter(tags=["calls"])
CallId = Annotated[str, Path(max_length=200)]


def _planner(state: StateDep) -> Planner:
    """The calls service's planner: its directory resolves the agents of a call's legs."""
    planner: Planner = state["services"]["calls"].planner
    return planner


@router.get("/api/calls/mine/pending")
async def pending_wrapups(
    session: SessionDep, state: StateDep, agent: CurrentAgent
) -> dict[str, Any]:
    """Calls the signed-in agent was connected to and has not wrapped up yet (with their
    drafts): ended calls, and calls they transferred."""
    return {
        "calls": await drafts.pending_wrapups(session, _planner(state), agent.username),
        "expires_after_hours": drafts.PENDING_WRAPUP_HOURS,
    }


@router.get("/api/calls/{call_id}/draft")
async def get_draft(
    session: SessionDep, state: StateDep, agent: CurrentAgent, call_id: CallId
) -> dict[str, Any]:
    """The signed-in agent's wrap-up of this call typed so far (empty when none), for an
    agent connected to it (now or before a transfer), one it is offered to, or a supervisor.
    Without a draft of their own, the agent the call is with sees the notes of the agent who
    transferred it (``updated_by`` says whose)."""
    return await drafts.get_draft(session, _planner(state), call_id, agent)


@router.put("/api/calls/{call_id}/draft")
async def save_draft(
    session: SessionDep,
    state: StateDep,
    agent: CurrentAgent,
    call_id: CallId,
    body: drafts.DraftIn,
) -> dict[str, Any]:
    """Save the signed-in agent's wrap-up form as it stands (the page does this as the agent
    types, during the call and after)."""
    return await drafts.save_draft(session, _planner(state), call_id, agent, body)


@router.get("/api/dispositions")
async def list_dispositions(session: SessionDep, _: CurrentAgent) -> dict[str, Any]:
    """``{"default": [{"code", "label"}], "queues": {name: [...]}}``."""
    return await dispositions.dispositions_by_queue(session)
