"""The call API: a call and its journal, the active calls, the agent's day, choices, wrap-up."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from app.calls import legs
from app.calls import repository as repo
from app.calls.pop import caller_of, customer_name
from app.calls.schemas import MatchChoice, StoredText, WrapUp
from app.calls.service import CallService
from app.deps import SessionDep, StateDep
from app.errors import Forbidden, NotFound
from app.users.deps import CurrentAgent, CurrentSupervisor, CurrentUser
from telephony.events import CALL_ID_MAX

router = APIRouter(tags=["calls"])
CallId = Annotated[StoredText, Path(max_length=CALL_ID_MAX)]


def _service(state: StateDep) -> CallService:
    service: CallService = state["services"]["calls"]
    return service


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def call_document(call: dict[str, Any], events: list[Any]) -> dict[str, Any]:
    """A call as the API shows it, with its journal (one entry per accepted event)."""
    return {
        "id": call["id"],
        "channel": call.get("channel") or "phone",
        "state": call["state"],
        "caller": caller_of(call),
        "caller_name": call["caller_name"],
        "dialed": call["dialed"],
        "queue": call["queue"],
        "agent": call["agent"],
        "offered_to": list(call["offered_to"] or []),
        "customer_id": call["customer_id"],
        "customer_name": customer_name(call),
        "match": call["match"] or {"kind": "none", "candidates": []},
        "pop_version": call["pop_version"],
        "first_seen_at": _iso(call["first_seen_at"]),
        "queued_at": _iso(call["queued_at"]),
        "answered_at": _iso(call["answered_at"]),
        "ended_at": _iso(call["ended_at"]),
        "events": [
            {
                "event_id": e.event_id,
                "kind": e.kind,
                "occurred_at": _iso(e.occurred_at),
                "received_at": _iso(e.received_at),
                "agent": (e.event or {}).get("agent"),
                "attributes": (e.event or {}).get("attributes") or {},
                "applied": bool(e.applied),
                "raw": e.raw,
            }
            for e in events
        ],
    }


@router.get("/api/calls/mine")
async def my_calls(
    state: StateDep, agent: CurrentAgent, today: Annotated[bool, Query()] = True
) -> dict[str, Any]:
    """The signed-in agent's calls today (local day, ``SCREENPOP_TIMEZONE``), newest first."""
    return {"calls": await _service(state).actions.calls_today(agent.username)}


@router.get("/api/calls")
async def list_calls(
    session: SessionDep,
    _: CurrentSupervisor,
    active: Annotated[bool, Query()] = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Active calls (``active=true``), or the most recent ones, each with its journal."""
    calls = await (
        repo.active_calls(session, limit) if active else repo.recent_calls(session, limit)
    )
    journal = await repo.journal_for_calls(session, [c["id"] for c in calls])
    by_call: dict[str, list[Any]] = {}
    for record in journal:
        by_call.setdefault(record.call_id, []).append(record)
    return {"calls": [call_document(c, by_call.get(c["id"], [])) for c in calls]}


@router.get("/api/calls/{call_id}")
async def get_call(
    session: SessionDep, state: StateDep, user: CurrentUser, call_id: CallId
) -> dict[str, Any]:
    """One call: state, caller, queue, agent, match and its journaled events.

    Supervisors see every call; an agent sees the calls offered to or taken by them, and
    those they transferred (their leg's wrap-up opens it).
    """
    call = await repo.get_call(session, call_id)
    if call is None:
        raise NotFound(f"call {call_id!r} not found")
    if not (
        user.is_supervisor
        or user.username in (call["offered_to"] or [])
        or await legs.had_leg(
            session, _service(state).planner, call_id, user.username, call["agent"]
        )
    ):
        raise Forbidden("supervisor role required for a call that is not yours")
    return call_document(call, list(await repo.journal_for_calls(session, [call_id])))


@router.post("/api/calls/{call_id}/match")
async def choose_match(
    state: StateDep, agent: CurrentAgent, call_id: CallId, body: MatchChoice
) -> dict[str, Any]:
    """The agent's choice among several customers (or any customer): remembered for the
    caller's number and popped again as a new version. Answers the new pop."""
    return await _service(state).actions.choose_match(call_id, body.customer_id, agent)


@router.post("/api/calls/{call_id}/wrapup", status_code=201)
async def wrapup(
    state: StateDep, agent: CurrentAgent, call_id: CallId, body: WrapUp
) -> dict[str, Any]:
    """Record the call's outcome as an interaction; a second wrap-up answers 409."""
    return await _service(state).actions.wrapup(call_id, agent, body.model_dump(mode="json"))
