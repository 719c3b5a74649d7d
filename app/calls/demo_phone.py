"""The demo phone: Answer, Decline and Hang up for a person, in demo mode only.

Mounted by ``app.main`` only when ``SCREENPOP_DEMO`` is on. Each button asks the demo's PBX
(``app.calls.demo_centre``) to do what a desk phone would make a real one do, and the PBX posts
the event a real one would send (``answered``; ``queued`` withdrawing the offer; ``ended``)
through the generic webhook, the same ingest path as every PBX event. The pop, the call's
state and the agent's presence then follow from those events alone.

* ``GET /api/demo/phone`` → ``{"call": {"id", "state": "ringing"|"answered", "caller": {"raw",
  "withheld"}, "queue", "rings_out_in_s"} | null, "ring_timeout_s"}``: what the signed-in
  agent's phone shows;
* ``POST /api/demo/phone/answer|decline|hangup`` ``{"call_id"}`` → the same document after the
  action; 404 for a call the demo does not have in progress, 409 for one that is not ringing on
  (answer, decline) or connected to (hang up) this agent's phone, 503 while the demo starts.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.calls.demo_centre import centre_of
from app.deps import StateDep
from app.users.deps import CurrentAgent
from telephony.events import CALL_ID_MAX

router = APIRouter(tags=["demo"])


class PhoneAction(BaseModel):
    """A button pressed on the demo phone, for the call it shows."""

    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(min_length=1, max_length=CALL_ID_MAX)


@router.get("/api/demo/phone")
async def my_phone(principal: CurrentAgent, state: StateDep) -> dict[str, Any]:
    """What the signed-in agent's demo phone shows: the call ringing or answered there."""
    return centre_of(state).phone(principal.username)


@router.post("/api/demo/phone/answer")
async def answer(body: PhoneAction, principal: CurrentAgent, state: StateDep) -> dict[str, Any]:
    """Pick up the call ringing on this phone."""
    return await centre_of(state).answer(principal.username, body.call_id)


@router.post("/api/demo/phone/decline")
async def decline(body: PhoneAction, principal: CurrentAgent, state: StateDep) -> dict[str, Any]:
    """Decline the call ringing on this phone: it rings the next available agent."""
    return await centre_of(state).decline(principal.username, body.call_id)


@router.post("/api/demo/phone/hangup")
async def hang_up(body: PhoneAction, principal: CurrentAgent, state: StateDep) -> dict[str, Any]:
    """Hang up the call on this phone: it ends and the agent is in wrap-up."""
    return await centre_of(state).hang_up(principal.username, body.call_id)
