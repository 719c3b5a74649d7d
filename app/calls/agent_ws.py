"""``WS /ws/agent?token=…``: an agent's pops, live and replayed.

Protocol (docs/calls.md, "Agent websocket"):

* a token that is missing, forged or expired: the server accepts, then closes with
  **4401** and the reason (``unauthorized: token expired``), so browsers see the code;
* on connect the server subscribes ``agent:{username}`` and then replays, from the
  database, a ``pop`` for every call still live for the agent (ringing to them, or answered
  or held by them) - after a dropped connection or a server restart alike. The replay pages
  into the send queue while it is sent, so any number of live calls fits;
* after a broker outage (resync) the same replay runs in place, plus a ``call.state`` for
  each call this connection showed that is no longer live for the agent;
* server -> client: ``pop``, ``pop.update``, ``call.state`` (see ``app.calls.pop``);
* a pop an event caused is reported once written to the socket: ``pop.pushed`` on ``calls``
  with the time since the event arrived (pop health, ``AgentActions.pop_written``);
* client -> server: ``{"type": "ack", "call_id", "version"}`` records the delivered time;
  ``{"type": "seen", "call_id", "version"}`` (or an ack with ``"seen": true``) records the
  seen time too (queued, written in batches within ``receipt_flush_ms``: ``app.calls.receipts``);
  one for a call whose pop was never sent to this agent gets ``{"type": "error", "error":
  "not_found", …}`` and nothing is written.
  Anything else gets ``{"type": "error", …}`` and the connection stays open;
* ``agent.connection`` is published on the ``presence`` channel on connect and disconnect;
  the open pages are counted per instance for its heartbeat (``app.queues.timeouts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, WebSocket

from app.calls.publishing import agent_channel
from app.calls.service import CallService
from app.db import utcnow
from app.deps import get_state
from app.errors import BadRequest, Unauthorized
from app.live.hub import Hub
from app.live.provenance import Stamped
from app.live.pump import pump
from app.live.subscription import call_id_of
from app.queues.timeouts import local_pages
from app.state import State
from app.users.deps import checked_principal
from app.users.service import Principal

log = logging.getLogger(__name__)
router = APIRouter()
CLOSE_UNAUTHORIZED = 4401
PRESENCE_CHANNEL = "presence"


async def _presence(hub: Hub, username: str, connected: bool) -> None:
    with contextlib.suppress(Exception):
        await hub.publish(
            PRESENCE_CHANNEL,
            {
                "type": "agent.connection",
                "username": username,
                "connected": connected,
                "at": utcnow().isoformat(),
            },
        )


async def open_page(state: State, username: str) -> None:
    """An agent page of ``username`` opened on this instance: counted for the heartbeat and
    published (a logged-out agent becomes available). The demo's simulated agents open theirs
    in process (``app.calls.demo_centre``)."""
    local_pages(state)[username] += 1
    await _presence(state["hub"], username, True)


async def close_page(state: State, username: str) -> None:
    """One agent page of ``username`` closed on this instance."""
    pages = local_pages(state)
    pages[username] -= 1
    if pages[username] <= 0:
        del pages[username]
    await _presence(state["hub"], username, False)


@router.websocket("/ws/agent")
async def agent_socket(websocket: WebSocket) -> None:
    """Pops for the signed-in agent (every tab of theirs gets the same frames)."""
    state = get_state(websocket)
    try:
        principal = checked_principal(websocket, websocket.query_params.get("token"))
    except Unauthorized as exc:
        await websocket.accept()
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason=f"unauthorized: {exc.detail}")
        return
    service: CallService = state["services"]["calls"]
    hub = state["hub"]
    await websocket.accept()
    # Subscribe before reading the replay so nothing published in between is missed; the
    # subscription drops a pop it already queued at the same version.
    sub = hub.subscribe([agent_channel(principal.username)])

    replaying: list[asyncio.Task[None]] = []

    async def replay() -> None:
        # Calls this connection showed before a resync: those that ended or moved on while
        # the broker was down get their call.state (their live pops are replayed anyway).
        held = sub.held_calls()
        pops = await service.actions.live_pops(principal)
        live = {call_id_of(m) for m in pops}
        states = await service.actions.states_of(principal, held - live)
        for message in (*pops, *states):
            await sub.room()
            if sub.closed or sub.overflowed:
                return
            sub.push(message)

    async def replay_or_close() -> None:
        try:
            await replay()
        except Exception:
            # The client reconnects (1001) and gets the replay then.
            log.exception("agent websocket replay failed; closing for a reconnect")
            sub.close()

    async def start_replay() -> None:
        # The pump sends while the replay pages in, so any number of live calls fits.
        for task in replaying:
            task.cancel()
        replaying[:] = [asyncio.create_task(replay_or_close(), name=f"replay:{principal.username}")]

    async def on_message(message: dict[str, Any]) -> None:
        await handle_client_message(service, principal, message, held=sub.holds)

    def on_written(item: Stamped, written_at: float) -> None:
        service.actions.pop_written(principal.username, item, written_at)

    await open_page(state, principal.username)
    try:
        await start_replay()
        await pump(
            websocket,
            sub,
            on_client_message=on_message,
            on_resync=start_replay,
            audience="agent",
            revoked=state["services"]["access"].revoked(principal, supervisor=False),
            on_written=on_written,
        )
    finally:
        for task in replaying:
            task.cancel()
        await asyncio.gather(*replaying, return_exceptions=True)
        hub.unsubscribe(sub)
        await close_page(state, principal.username)


async def handle_client_message(
    service: CallService,
    principal: Principal,
    message: dict[str, Any],
    *,
    held: Callable[[str], bool] | None = None,
) -> None:
    """An ``ack`` or ``seen`` from the agent's screen; one for a call whose pop was never sent
    to this agent is ``not_found`` (nothing written). ``held``: whether the connection holds
    the call's pop (then the database is not asked)."""
    kind = message.get("type")
    if kind not in ("ack", "seen"):
        raise BadRequest(f"unknown message type {kind!r}; send 'ack' or 'seen'")
    call_id = message.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest("call_id: required")
    version = message.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise BadRequest("version: must be an integer")
    seen = kind == "seen" or message.get("seen") is True
    await service.actions.record_receipt(
        principal, call_id, version, seen=seen, held=held is not None and held(call_id)
    )
