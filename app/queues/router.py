"""Supervisors' queue statistics (HTTP and websocket) and agents' own status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, WebSocket
from pydantic import BaseModel

from app import csv_export
from app.deps import SessionDep, StateDep, get_state
from app.errors import Conflict, DomainError, Forbidden, Unauthorized
from app.live.pump import pump
from app.live.subscription import Subscription
from app.queues import history, service
from app.queues import runtime as queues_runtime
from app.queues.presence import SETTABLE_STATES
from app.users.deps import CurrentAgent, CurrentSupervisor, checked_principal
from telephony.events import CONTACT_CHANNELS, PHONE, QUEUE_MAX

log = logging.getLogger(__name__)
router = APIRouter()
# ?channel= of the history: phone or a contact channel (telephony.events).
CHANNEL_PATTERN = "^(" + "|".join((PHONE, *CONTACT_CHANNELS)) + ")$"

# At most one message per 0.26 s per connection (under 4 Hz), however fast events arrive.
MIN_INTERVAL_S = 0.26
# With nothing changing, a fresh snapshot this often keeps waiting times moving.
HEARTBEAT_S = 2.0


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


@router.get("/api/queues/history", response_model=None)
async def get_history(
    principal: CurrentSupervisor,
    state: StateDep,
    session: SessionDep,
    day: Annotated[date | None, Query(alias="date")] = None,
    queue: Annotated[str | None, Query(max_length=QUEUE_MAX)] = None,
    interval_min: int = 15,
    format: Literal["json", "csv"] = "json",
    channel: Annotated[str | None, Query(pattern=CHANNEL_PATTERN)] = None,
) -> dict[str, Any] | Response:
    """A day's figures by interval and queue, from the database (default: today, 15 min);
    ``channel`` counts only that channel's contacts."""
    runtime = queues_runtime.runtime_of(state)
    scope = await service.scope_for(session, principal)
    queues = scope.queues
    if queue is not None:
        if queues is not None and queue not in queues:
            raise Forbidden(f"queue {queue!r} is not one of yours")
        queues = frozenset((queue,))
    timezone = state["settings"].timezone
    document = await history.day_history(
        session,
        day=day or runtime.stats.local_day(datetime.now(UTC)),
        timezone=timezone,
        service_levels=runtime.roster.service_levels,
        queues=queues,
        interval_min=interval_min,
        channel=channel,
    )
    if format == "csv":
        return Response(history.as_csv(document), media_type=csv_export.MEDIA_TYPE)
    return document


@router.post("/api/agents/me/status")
async def set_my_status(
    body: StatusIn, principal: CurrentAgent, state: StateDep, session: SessionDep
) -> dict[str, Any]:
    """The agent's own state (available, away, wrap_up, logged_out); not while a call rings.
    A supervisor or admin has a status (and shows on the wallboard) only with an extension."""
    assert body.state in SETTABLE_STATES
    if principal.is_supervisor and not await service.has_extension(session, principal.username):
        raise Forbidden(
            "only agents, or supervisors with an extension, take calls and have a status"
        )
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
    """A scoped snapshot on connect, then a fresh one after changes, at most 4 per second.

    Every instance computes the same figures from the hub's ``calls`` and ``presence``
    messages, so snapshots are built locally and queued on a channel-less subscription that
    the live pump sends (a pending snapshot is replaced by a newer one, never piled up).
    """
    state = get_state(websocket)
    await websocket.accept()
    try:
        principal = checked_principal(websocket, websocket.query_params.get("token"))
        if not principal.is_supervisor:
            raise Forbidden("supervisor role required")
        async with state["sessionmaker"]() as session:
            scope = await service.scope_for(session, principal)
    except DomainError as exc:
        code = 4401 if isinstance(exc, Unauthorized) else 4403
        await websocket.close(code=code, reason=exc.detail[:120])
        return
    runtime = queues_runtime.runtime_of(state)
    sub = state["hub"].subscribe(())
    queues, agents = service.scope_members(runtime.stats, runtime.roster, scope)
    version = runtime.stats.scope_version(queues, agents)
    first = service.members_snapshot(runtime.stats, runtime.roster, queues, agents)
    sub.push({"type": "queues", **first})
    producer = asyncio.create_task(_produce(runtime, scope, sub, version))

    async def resync() -> None:
        sub.push(_document(runtime, scope))

    try:
        await pump(
            websocket,
            sub,
            on_resync=resync,
            audience="supervisor",
            revoked=state["services"]["access"].revoked(principal, supervisor=True),
        )
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer


def _document(runtime: queues_runtime.QueuesRuntime, scope: service.Scope) -> dict[str, Any]:
    return {"type": "queues", **service.scoped_snapshot(runtime.stats, runtime.roster, scope)}


async def _produce(
    runtime: queues_runtime.QueuesRuntime,
    scope: service.Scope,
    sub: Subscription,
    sent_version: int,
) -> None:
    """Queue a snapshot when the scope changed (or every few seconds), spaced for the limit."""
    taken_at = time.monotonic()
    while not sub.closed:
        if len(sub):
            # Space snapshots from when the pump took the last one, not from when it was
            # queued, so a slow send can never be followed by a burst.
            await asyncio.sleep(0.02)
            taken_at = time.monotonic()
            continue
        stats = runtime.stats
        queues, agents = service.scope_members(stats, runtime.roster, scope)
        version = stats.scope_version(queues, agents)
        elapsed = time.monotonic() - taken_at
        if version == sent_version and elapsed < HEARTBEAT_S:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stats.changed().wait(), HEARTBEAT_S - elapsed)
            continue
        if elapsed < MIN_INTERVAL_S:
            await asyncio.sleep(MIN_INTERVAL_S - elapsed)
            continue
        sub.push(
            {"type": "queues", **service.members_snapshot(stats, runtime.roster, queues, agents)}
        )
        sent_version = version
