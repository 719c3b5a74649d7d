"""The websocket side of a subscription: send its frames, read the client's messages.

For the endpoint owners (``/ws/agent``, ``/ws/supervisor``)::

    await websocket.accept()
    sub = hub.subscribe([f"agent:{username}"])       # subscribe BEFORE reading the replay
    for message in await live_pops_from_db(...):     # so nothing published meanwhile is lost
        sub.push(message)
    await pump(websocket, sub, on_client_message=handle_ack, on_resync=replay, audience="agent")

Close codes used here:

- 4008 "too slow": the subscription overflowed (see ``app.live.subscription``); the client
  reconnects and gets the replay.
- 4009 "resync": messages may have been missed (Redis outage) and the endpoint gave no
  ``on_resync``; the client reconnects and gets the replay.
- 1001 "going away": the hub is closing (server shutdown).

Keepalive pings are uvicorn's own (``screenpop serve`` sets ``ws_ping_interval``).

A frame published with a provenance (``app.live.provenance``: the pops of an event) is written
inside a ``frame`` span of the event's trace (when tracing is on), and ``on_written`` then gets
it with the wall-clock time the write completed: what pop health measures up to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app import tracing
from app.errors import DomainError
from app.live.provenance import Stamped
from app.live.subscription import (
    Overflowed,
    ResyncRequired,
    Subscription,
    SubscriptionClosed,
    call_id_of,
)

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_TOO_SLOW = 4008
CLOSE_RESYNC = 4009
# Client messages are small acks and choices; anything bigger is refused without parsing.
MAX_CLIENT_MESSAGE = 16 * 1024
CLOSE_WAIT_S = 2.0

ClientHandler = Callable[[dict[str, Any]], Awaitable[None]]
ResyncHandler = Callable[[], Awaitable[None]]
# (the frame and its provenance, Unix time the write completed); must not block.
WrittenHandler = Callable[[Stamped, float], None]


async def pump(
    websocket: WebSocket,
    sub: Subscription,
    *,
    on_client_message: ClientHandler | None = None,
    on_resync: ResyncHandler | None = None,
    audience: str | None = None,
    revoked: Awaitable[tuple[int, str]] | None = None,
    on_written: WrittenHandler | None = None,
) -> None:
    """Run an accepted websocket until either side ends it; always unsubscribes ``sub``.

    ``on_client_message`` gets each client JSON object; a ``DomainError`` it raises goes back
    to the client as ``{"type": "error", "error", "detail"}`` and the connection stays open.
    ``on_resync`` replays from the database into ``sub`` (``sub.push``) after a Redis outage;
    without it the connection closes with 4009 so the client reconnects for the replay.
    ``audience`` ("agent", "supervisor") counts the connection in the websockets gauge.
    ``revoked`` ends when the user may no longer keep the connection (``app.users.access``)
    and gives the close code and reason (4401, 4403). ``on_written`` is called after each
    frame that came with a provenance is written to the socket.
    """
    gauge = _gauge(websocket, audience)
    if gauge is not None:
        gauge.inc()
    sender = asyncio.create_task(_send_frames(websocket, sub, on_resync, on_written))
    receiver = asyncio.create_task(_receive_messages(websocket, sub, on_client_message))
    # A client that stops reading blocks the sender inside a send; this notices the overflow.
    ended = asyncio.create_task(sub.ended.wait())
    watch = asyncio.ensure_future(revoked if revoked is not None else asyncio.Future())
    tasks = (sender, receiver, ended, watch)
    close: tuple[int, str] | None = None
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if watch in done and not watch.cancelled() and watch.exception() is None:
            close = watch.result()
        elif sender in done and not sender.cancelled() and sender.exception() is None:
            close = sender.result()
        elif ended in done and receiver not in done:
            close = _ending(sub)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sub.close()
        if gauge is not None:
            gauge.dec()
    if close is not None and websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            # Bounded: a client that reads nothing would hold the close frame forever.
            await asyncio.wait_for(websocket.close(code=close[0], reason=close[1]), CLOSE_WAIT_S)


def _ending(sub: Subscription) -> tuple[int, str]:
    if sub.overflowed:
        return CLOSE_TOO_SLOW, "too slow"
    return CLOSE_GOING_AWAY, "going away"


async def _send_frames(
    websocket: WebSocket,
    sub: Subscription,
    on_resync: ResyncHandler | None,
    on_written: WrittenHandler | None,
) -> tuple[int, str] | None:
    """Send until the subscription ends; returns the close code to use, or None (peer gone)."""
    while True:
        try:
            item = await sub.get_stamped()
        except (Overflowed, SubscriptionClosed):
            return _ending(sub)
        except ResyncRequired:
            if on_resync is None:
                return CLOSE_RESYNC, "resync"
            try:
                await on_resync()
            except Exception:
                log.exception("websocket replay after a resync failed; closing for a reconnect")
                return CLOSE_RESYNC, "resync"
            continue
        try:
            if isinstance(item, bytes):
                # Text frames: browsers hand them to JSON.parse without a Blob round trip.
                await websocket.send_text(item.decode())
            else:
                await _send_stamped(websocket, item, on_written)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return None


async def _send_stamped(
    websocket: WebSocket, item: Stamped, on_written: WrittenHandler | None
) -> None:
    """One frame with a provenance: the write in the event's trace, then ``on_written``."""
    trace = item.provenance.trace
    if trace is None:
        await websocket.send_text(item.frame.decode())
    else:
        kind = item.message.get("type")
        with (
            tracing.extracted(trace),
            tracing.span("frame", type=kind, call_id=call_id_of(item.message)),
        ):
            await websocket.send_text(item.frame.decode())
    if on_written is None:
        return
    written_at = time.time()
    try:
        on_written(item, written_at)
    except Exception:
        # Measuring must never cost the agent the connection.
        log.exception("websocket on_written handler failed")


async def _receive_messages(
    websocket: WebSocket, sub: Subscription, on_client_message: ClientHandler | None
) -> None:
    """Read client messages until the client disconnects."""
    while True:
        try:
            event = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        if event["type"] == "websocket.disconnect":
            return
        raw: str | bytes | None = event.get("text")
        if raw is None:
            raw = event.get("bytes")
        if raw is None:
            continue
        if len(raw) > MAX_CLIENT_MESSAGE:
            sub.push(
                _error(
                    "payload_too_large",
                    f"client messages are limited to {MAX_CLIENT_MESSAGE} bytes",
                )
            )
            continue
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            sub.push(_error("bad_request", "a client message must be a JSON object"))
            continue
        if not isinstance(message, dict):
            sub.push(_error("bad_request", "a client message must be a JSON object"))
            continue
        if on_client_message is None:
            continue
        try:
            await on_client_message(message)
        except DomainError as exc:
            sub.push(_error(exc.error, exc.detail))
        except Exception:
            log.exception("websocket client message handler failed")
            sub.push(_error("internal", "the message could not be handled"))


def _error(error: str, detail: str) -> dict[str, Any]:
    return {"type": "error", "error": error, "detail": detail}


def _gauge(websocket: WebSocket, audience: str | None) -> Any:
    if audience is None:
        return None
    metrics = websocket.scope.get("state", {}).get("metrics")
    if metrics is None:
        return None
    return metrics.websockets.labels(audience=audience)
