"""The websocket pump end to end: a tiny app on a real uvicorn, the ``websockets`` client."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import uvicorn
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.errors import Invalid
from app.live.hub import Hub
from app.live.pump import CLOSE_GOING_AWAY, CLOSE_RESYNC, CLOSE_TOO_SLOW, pump
from app.metrics import Metrics
from app.tcp import cut_stalled_peers
from tests.support.server import free_port


class Harness:
    """A hub, an app whose ``/ws`` pumps one subscription, and what its handlers saw."""

    def __init__(self, queue_size: int = 256) -> None:
        self.hub = Hub(queue_size=queue_size)
        self.metrics = Metrics()
        self.received: list[dict[str, Any]] = []
        self.port = free_port()
        self.app = self._app()

    def _app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
            yield {"metrics": self.metrics}

        app = FastAPI(lifespan=lifespan)

        @app.websocket("/ws")
        async def endpoint(websocket: WebSocket, channel: str, replay: bool = True) -> None:
            await websocket.accept()
            sub = self.hub.subscribe([channel])
            sub.push({"type": "hello"})

            async def on_client_message(message: dict[str, Any]) -> None:
                if message.get("type") == "invalid":
                    raise Invalid("that is not a thing")
                if message.get("type") == "crash":
                    raise RuntimeError("handler bug")
                self.received.append(message)

            async def on_resync() -> None:
                sub.push({"type": "replayed"})

            await pump(
                websocket,
                sub,
                on_client_message=on_client_message,
                on_resync=on_resync if replay else None,
                audience="agent",
            )

        return app

    def url(self, query: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?{query}"

    def connected(self) -> float:
        return self.metrics.websockets.labels(audience="agent")._value.get()  # type: ignore[no-any-return]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness(queue_size=4)
    await h.hub.start()
    server = uvicorn.Server(
        uvicorn.Config(h.app, host="127.0.0.1", port=h.port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started)
    yield h
    server.should_exit = True
    await asyncio.wait_for(task, 10)
    await h.hub.close()


async def eventually(predicate: Callable[[], bool], wait_s: float = 5.0) -> None:
    deadline = time.monotonic() + wait_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def recv(ws: ClientConnection) -> dict[str, Any]:
    frame = await asyncio.wait_for(ws.recv(), 3)
    assert isinstance(frame, str), "frames are text"
    return dict(orjson.loads(frame))


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), 3)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


async def test_frames_out_client_messages_in_errors_answered(harness: Harness) -> None:
    hub = harness.hub
    async with connect(harness.url("channel=agent:alice")) as ws:
        assert await recv(ws) == {"type": "hello"}
        assert harness.connected() == 1
        await hub.publish("agent:alice", {"type": "pop", "version": 1, "call": {"id": "c1"}})
        await hub.publish("agent:bob", {"type": "pop", "version": 1, "call": {"id": "c2"}})
        assert (await recv(ws))["call"]["id"] == "c1"

        await ws.send(orjson.dumps({"type": "ack", "call_id": "c1", "version": 1}).decode())
        await ws.send("not json")
        assert await recv(ws) == {
            "type": "error",
            "error": "bad_request",
            "detail": "a client message must be a JSON object",
        }
        await ws.send('{"type": "invalid"}')
        assert await recv(ws) == {
            "type": "error",
            "error": "invalid",
            "detail": "that is not a thing",
        }
        await ws.send('{"type": "crash"}')
        assert (await recv(ws))["error"] == "internal"
        await ws.send(b'{"type": "ack", "call_id": "c1", "version": 2}')  # binary works too
        await eventually(lambda: len(harness.received) == 2)
        assert [m["version"] for m in harness.received] == [1, 2]
        # Still open after all that.
        await hub.publish("agent:alice", {"type": "call.state", "call_id": "c1", "state": "ended"})
        assert (await recv(ws))["state"] == "ended"

    # The client left: the subscription is gone and the gauge is back down.
    await eventually(lambda: hub.subscriber_count("agent:alice") == 0)
    assert harness.connected() == 0


async def test_a_client_that_cannot_keep_up_is_closed_with_4008(harness: Harness) -> None:
    hub = harness.hub
    async with connect(harness.url("channel=agent:alice")) as ws:
        assert await recv(ws) == {"type": "hello"}
        # The in-process publish never yields, so the pump cannot drain: the bound is hit.
        for i in range(6):
            await hub.publish("agent:alice", {"type": "pop", "version": 1, "call": {"id": f"c{i}"}})
        assert await closed_with(ws) == (CLOSE_TOO_SLOW, "too slow")
    assert hub.overflows == 1
    await eventually(lambda: hub.subscriber_count() == 0)

    # Coalescable messages do not overflow the same bound.
    async with connect(harness.url("channel=agent:alice")) as ws:
        assert await recv(ws) == {"type": "hello"}
        for state in ("ringing", "answered", "held", "resumed", "answered", "ended"):
            await hub.publish("agent:alice", {"type": "call.state", "call_id": "c", "state": state})
        assert await recv(ws) == {"type": "call.state", "call_id": "c", "state": "ended"}
    assert hub.overflows == 1


async def test_a_client_that_stops_reading_is_cut_off_even_mid_send(harness: Harness) -> None:
    hub = harness.hub
    big = "x" * 1_000_000
    # The client stops reading after one message and has a small receive buffer (a fixed
    # SO_RCVBUF turns autotuning off), so TCP fills and the server's send blocks.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect(("127.0.0.1", harness.port))
    sock.setblocking(False)
    url = harness.url("channel=agent:alice")
    # No compression: the padding must really fill the pipe.
    options: dict[str, Any] = {"max_queue": 1, "max_size": None, "compression": None}
    async with connect(url, sock=sock, **options) as ws:
        await eventually(lambda: harness.connected() == 1)
        for i in range(40):
            await hub.publish(
                "agent:alice", {"type": "pop", "version": 1, "call": {"id": f"c{i}"}, "pad": big}
            )
            await asyncio.sleep(0.01)
            if hub.overflows:
                break
        assert hub.overflows == 1
        # The pump noticed although its sender was stuck: the connection is gone server-side.
        await eventually(lambda: harness.connected() == 0, wait_s=3)
        assert hub.subscriber_count("agent:alice") == 0
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)


async def test_resync_replays_in_place_or_closes_with_4009(harness: Harness) -> None:
    hub = harness.hub
    async with (
        connect(harness.url("channel=agent:alice")) as replaying,
        connect(harness.url("channel=agent:bob&replay=false")) as plain,
    ):
        assert await recv(replaying) == {"type": "hello"}
        assert await recv(plain) == {"type": "hello"}
        hub.request_resync()
        assert await recv(replaying) == {"type": "replayed"}
        assert await closed_with(plain) == (CLOSE_RESYNC, "resync")
        await hub.publish("agent:alice", {"type": "note"})
        assert await recv(replaying) == {"type": "note"}


async def test_hub_close_says_going_away(harness: Harness) -> None:
    async with connect(harness.url("channel=agent:alice")) as ws:
        assert await recv(ws) == {"type": "hello"}
        await harness.hub.close()
        assert await closed_with(ws) == (CLOSE_GOING_AWAY, "going away")


async def test_a_client_that_stops_reading_loses_its_tcp_connection_too() -> None:
    """With TCP_USER_TIMEOUT on the listening socket (``screenpop serve`` sets it), the
    overflowed client's connection is aborted by the kernel, not held until TCP gives up."""
    h = Harness(queue_size=4)
    await h.hub.start()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", h.port))
    if not cut_stalled_peers(listener, 1.0):
        pytest.skip("no TCP_USER_TIMEOUT on this platform")
    server = uvicorn.Server(uvicorn.Config(h.app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    await eventually(lambda: server.started)
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.connect(("127.0.0.1", h.port))
        sock.setblocking(False)
        options: dict[str, Any] = {"max_queue": 1, "max_size": None, "compression": None}
        async with connect(h.url("channel=agent:alice"), sock=sock, **options):
            await eventually(lambda: h.connected() == 1)
            big = "x" * 1_000_000
            for i in range(40):
                await h.hub.publish(
                    "agent:alice",
                    {"type": "pop", "version": 1, "call": {"id": f"c{i}"}, "pad": big},
                )
                await asyncio.sleep(0.01)
                if h.hub.overflows:
                    break
            assert h.hub.overflows == 1
            # The server holds no connection any more although the client never read.
            await eventually(lambda: not server.server_state.connections, wait_s=30)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await h.hub.close()
