"""Supervisors' queue statistics (HTTP and websocket) and agents' own status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

from app.deps import SessionDep, StateDep, get_state
from app.errors import Conflict, DomainError, Forbidden, Unauthorized
from app.queues import runtime as queues_runtime
from app.queues import service
from app.queues.presence import SETTABLE_STATES
from app.users.deps import CurrentAgent, CurrentSupervisor
from app.users.service import principal_from_token

log = logging.getLogger(__name__)
router = APIRouter()

# At most one message per 0.25 s per connection (4 Hz), however fast events arrive.
MIN_INTERVAL_S = 0.25
# With nothing changing, a fresh snapshot this often keeps waiting times moving.
HEARTBEAT_S = 2.0
SEND_TIMEOUT_S = 5.0


class StatusIn(BaseModel):
    state: Literal["available", "away", "wrap_up", "logged_out"]


@router.get("/api/queues")
async def get_queues(
    principal: CurrentSupervisor, state: StateDep, session: SessionDep
) -> dict[str, Any]:
    """Today's figures for the caller's queues and their agents (admin: everything)."""
    runtime = queues_runtime.runtime_of(state)
    scope = await service.scope_for(session, principal)
    return service.scoped_snapshot(runtime.stats, runtime.roster, scope)


@router.post("/api/agents/me/status")
async def set_my_status(body: StatusIn, principal: CurrentAgent, state: StateDep) -> dict[str, Any]:
    """The agent's own state (available, away, wrap_up, logged_out); not while a call rings."""
    assert body.state in SETTABLE_STATES
    stats = queues_runtime.runtime_of(state).stats
    current = stats.agents.get(principal.username)
    if current is not None and current.state in ("ringing", "on_call"):
        raise Conflict(f"cannot change state while {current.state.replace('_', ' ')}")
    at = datetime.now(UTC)
    # Every instance (this one included) folds the message; the presence writer persists it.
    await state["hub"].publish(
        "presence",
        {
            "type": "agent.status",
            "username": principal.username,
            "state": body.state,
            "at": at.isoformat(),
        },
    )
    view = stats.agents.get(principal.username)
    since = view.since if view is not None and view.state == body.state and view.since else at
    return {"username": principal.username, "state": body.state, "since": since.isoformat()}


@router.websocket("/ws/supervisor")
async def supervisor_ws(websocket: WebSocket) -> None:
    """A scoped snapshot on connect, then a fresh one after changes, at most 4 per second."""
    state = get_state(websocket)
    await websocket.accept()
    try:
        principal = principal_from_token(
            state["settings"].jwt_key(), websocket.query_params.get("token")
        )
        if not principal.is_supervisor:
            raise Forbidden("supervisor role required")
        async with state["sessionmaker"]() as session:
            scope = await service.scope_for(session, principal)
    except DomainError as exc:
        code = 4401 if isinstance(exc, Unauthorized) else 4403
        await websocket.close(code=code, reason=exc.detail[:120])
        return
    gauge = state["metrics"].websockets.labels(audience="supervisor")
    gauge.inc()
    pump = asyncio.create_task(_pump(websocket, state, scope))
    listen = asyncio.create_task(_drain_client(websocket))
    try:
        await asyncio.wait({pump, listen}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, listen):
            task.cancel()
        for task in (pump, listen):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        gauge.dec()
        with contextlib.suppress(Exception):
            await websocket.close()


async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a disconnect is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect):
        async for _ in websocket.iter_text():
            pass


async def _pump(websocket: WebSocket, state: Any, scope: service.Scope) -> None:
    runtime = queues_runtime.runtime_of(state)
    sent_version = -1
    sent_at = -HEARTBEAT_S
    while True:
        stats = runtime.stats
        queues, agents = service.scope_members(stats, runtime.roster, scope)
        version = stats.scope_version(queues, agents)
        elapsed = time.monotonic() - sent_at
        if version == sent_version and elapsed < HEARTBEAT_S:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stats.changed().wait(), HEARTBEAT_S - elapsed)
            continue
        if elapsed < MIN_INTERVAL_S:
            # Coalesce: everything that changes meanwhile goes out in the next message.
            await asyncio.sleep(MIN_INTERVAL_S - elapsed)
            continue
        document = stats.snapshot(queues, agents)
        frame = orjson.dumps({"type": "queues", **document}).decode()
        await asyncio.wait_for(websocket.send_text(frame), SEND_TIMEOUT_S)
        sent_version, sent_at = version, time.monotonic()
