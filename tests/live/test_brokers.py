"""The Redis broker against the real Redis: two hubs in one process stand for two instances."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from redis import asyncio as aioredis

from app.live.brokers import RedisBroker
from app.live.hub import Hub
from app.live.provenance import Provenance, Stamped
from app.live.subscription import ResyncRequired, Subscription
from tests.support.own_redis import OwnRedis
from tests.support.server import free_port

RESYNC = {"type": "<resync>"}


async def next_item(sub: Subscription, wait_s: float = 3.0) -> dict[str, Any]:
    """The next frame (decoded), or RESYNC when the subscription was told to replay."""
    try:
        return dict(orjson.loads(await asyncio.wait_for(sub.get(), wait_s)))
    except ResyncRequired:
        return RESYNC


async def items_until(sub: Subscription, marker: str, wait_s: float = 3.0) -> list[dict[str, Any]]:
    """Everything up to and including the message whose ``n`` is ``marker``."""
    out: list[dict[str, Any]] = []
    while True:
        item = await next_item(sub, wait_s)
        out.append(item)
        if item.get("n") == marker:
            return out


async def eventually(predicate: Callable[[], bool], wait_s: float = 5.0) -> None:
    deadline = time.monotonic() + wait_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def redis_hub(url: str, prefix: str, **options: Any) -> Hub:
    return Hub(RedisBroker(url, prefix=prefix, **options))


@pytest.fixture
async def two_hubs(redis_url: str, prefix: str) -> AsyncIterator[tuple[Hub, Hub]]:
    a = redis_hub(redis_url, prefix, reconnect_min_s=0.5)
    b = redis_hub(redis_url, prefix)
    await a.start()
    await b.start()
    assert a.connected and b.connected
    yield a, b
    await a.close()
    await b.close()


async def test_publish_on_a_reaches_subscribers_on_both_exactly_once(
    two_hubs: tuple[Hub, Hub],
) -> None:
    a, b = two_hubs
    on_a, on_b = a.subscribe(["agent:alice"]), b.subscribe(["agent:alice"])
    bob_on_b = b.subscribe(["agent:bob"])

    await a.publish("agent:alice", {"type": "note", "n": "first"})
    await a.publish("agent:alice", {"type": "note", "n": "end"})

    # Both messages once each, in order, on both instances (the publisher's own included).
    assert [m["n"] for m in await items_until(on_b, "end")] == ["first", "end"]
    assert [m["n"] for m in await items_until(on_a, "end")] == ["first", "end"]
    assert bob_on_b.get_nowait() is None


async def test_listeners_on_every_instance_get_each_message_once(
    two_hubs: tuple[Hub, Hub],
) -> None:
    a, b = two_hubs
    seen: dict[str, list[Any]] = {"a": [], "b": []}

    def recorder(name: str) -> Any:
        async def listen(channel: str, message: dict[str, Any]) -> None:
            seen[name].append((channel, message["n"]))

        return listen

    a.add_listener("calls", recorder("a"))
    b.add_listener("calls", recorder("b"))
    for n in range(3):
        await b.publish("calls", {"type": "call.change", "n": n})
    await eventually(lambda: len(seen["a"]) >= 3 and len(seen["b"]) >= 3)
    await asyncio.sleep(0.1)  # room for a duplicate to show up
    assert seen["a"] == seen["b"] == [("calls", 0), ("calls", 1), ("calls", 2)]


async def test_a_pop_replayed_on_top_of_the_published_one_arrives_once(
    two_hubs: tuple[Hub, Hub],
) -> None:
    a, b = two_hubs
    tab = b.subscribe(["agent:alice"])
    pop = {"type": "pop", "version": 3, "call": {"id": "generic:c1"}}
    await a.publish("agent:alice", pop)
    await a.publish("agent:alice", pop)  # e.g. published again by a retried handler
    tab.push(pop)  # and the endpoint's replay on resync
    await a.publish("agent:alice", {"type": "note", "n": "end"})
    got = await items_until(tab, "end")
    assert [m["type"] for m in got] == ["pop", "note"]


async def subscriber_client_id(admin: aioredis.Redis, broker: RedisBroker) -> int:
    for client in await admin.client_list():
        if client.get("name") == broker.client_name:
            return int(client["id"])
    raise AssertionError(f"{broker.client_name} not in CLIENT LIST")


async def test_killed_subscriber_connection_local_delivery_continues_then_resync(
    two_hubs: tuple[Hub, Hub], redis_admin: aioredis.Redis
) -> None:
    a, b = two_hubs
    broker = a.broker
    assert isinstance(broker, RedisBroker)
    on_a, on_b = a.subscribe(["agent:alice"]), b.subscribe(["agent:alice"])
    reconnected = asyncio.Event()
    a.on_reconnect(reconnected.set)

    await redis_admin.client_kill_filter(_id=await subscriber_client_id(redis_admin, broker))
    await eventually(lambda: not a.connected)

    # While A's subscriber is away, A still serves its own agents, and B still gets A's news.
    await a.publish("agent:alice", {"type": "note", "n": "during"})
    assert await next_item(on_a) == {"type": "note", "n": "during"}
    assert await next_item(on_b) == {"type": "note", "n": "during"}
    assert broker.fallbacks == 1

    await asyncio.wait_for(reconnected.wait(), 5)
    assert a.connected and broker.reconnects == 1
    # A may have missed B's messages meanwhile: its websockets are told to replay.
    assert await next_item(on_a) == RESYNC
    # After the reconnect, delivery goes through Redis again, once, and the earlier
    # fallback copy never shows up a second time.
    await a.publish("agent:alice", {"type": "note", "n": "after"})
    assert await items_until(on_a, "after") == [{"type": "note", "n": "after"}]
    assert await items_until(on_b, "after") == [{"type": "note", "n": "after"}]


class RedisLink:
    """A TCP proxy to Redis that a test can cut and restore, as a network outage would."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_redis_outage_local_service_continues_and_both_sides_resync(
    redis_url: str, prefix: str
) -> None:
    link = RedisLink(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    await link.up()
    a = redis_hub(link.url, prefix, reconnect_min_s=0.05, reconnect_max_s=0.2)
    b = redis_hub(redis_url, prefix)
    await a.start()
    await b.start()
    try:
        on_a, on_b = a.subscribe(["agent:alice"]), b.subscribe(["agent:alice"])
        await link.down()
        await eventually(lambda: not a.connected)

        started = time.monotonic()
        await a.publish("agent:alice", {"type": "note", "n": "local"})  # does not raise
        await a.publish("agent:alice", {"type": "note", "n": "local2"})
        assert time.monotonic() - started < 1.0  # no connect timeout on every publish
        assert [m["n"] for m in await items_until(on_a, "local2")] == ["local", "local2"]
        await b.publish("agent:alice", {"type": "note", "n": "missed-by-a"})
        assert [m["n"] for m in await items_until(on_b, "missed-by-a")] == ["missed-by-a"]

        await link.up()
        await eventually(lambda: a.connected)
        # A replays what it missed from B; B replays what A could not send it.
        assert await next_item(on_a) == RESYNC
        assert await next_item(on_b) == RESYNC
        await b.publish("agent:alice", {"type": "note", "n": "back"})
        assert await next_item(on_a) == {"type": "note", "n": "back"}
    finally:
        await a.close()
        await b.close()
        with contextlib.suppress(Exception):
            await link.down()


async def test_unreachable_redis_at_start_serves_locally(prefix: str) -> None:
    hub = redis_hub(
        f"redis://127.0.0.1:{free_port()}/0", prefix, start_timeout_s=0.3, connect_timeout_s=0.2
    )
    await hub.start()
    try:
        assert not hub.connected
        sub = hub.subscribe(["agent:alice"])
        seen: list[str] = []

        async def listen(channel: str, message: dict[str, Any]) -> None:
            seen.append(message["n"])

        hub.add_listener("calls", listen)
        await hub.publish("agent:alice", {"type": "note", "n": "1"})
        await hub.publish("calls", {"type": "call.change", "n": "2"})
        assert await next_item(sub) == {"type": "note", "n": "1"}
        await eventually(lambda: seen == ["2"])
    finally:
        await hub.close()


async def test_a_closed_broker_delivers_locally_and_lets_redis_go(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """At shutdown the hub closes the broker, then the websockets: their last presence
    messages come after it. They go to this instance's subscribers only: no new Redis
    connection, no warning each (there were hundreds in a 2,000-agent shutdown)."""
    hub = redis_hub(redis_url, prefix)
    watcher = aioredis.from_url(redis_url)
    pubsub = watcher.pubsub()
    await pubsub.subscribe(f"{prefix}:presence")
    assert (await pubsub.get_message(timeout=3))["type"] == "subscribe"  # type: ignore[index]
    await hub.start()
    try:
        sub = hub.subscribe(["presence"])
        await hub.broker.close()
        with caplog.at_level("WARNING", logger="app.live.brokers"):
            for n in range(3):
                await hub.publish("presence", {"type": "agent.connection", "n": str(n)})
        assert [(await next_item(sub))["n"] for _ in range(3)] == ["0", "1", "2"]
        assert not [r for r in caplog.records if r.name == "app.live.brokers"]
        seen = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        assert seen is None, seen
    finally:
        await hub.close()
        await pubsub.aclose()
        await watcher.aclose()


async def test_a_provenance_rides_beside_the_frame_to_the_other_instance(
    two_hubs: tuple[Hub, Hub], redis_url: str, prefix: str
) -> None:
    a, b = two_hubs
    tab = b.subscribe(["agent:alice"])
    raw = aioredis.Redis.from_url(redis_url)
    pubsub = raw.pubsub()
    await pubsub.subscribe(f"{prefix}:agent:alice")
    try:
        stamp = Provenance(
            arrived_at=1764900000.123456,
            trace={
                "traceparent": f"00-{'4b' * 16}-{'0f' * 8}-01",
                "tracestate": "a=1, b=two words",
            },
        )
        pop = {"type": "pop", "version": 1, "call": {"id": "generic:c9"}}
        await a.publish("agent:alice", pop, provenance=stamp)
        await a.publish("agent:alice", {"type": "note", "n": "plain"})
        stamped = await asyncio.wait_for(tab.get_stamped(), 3)
        plain = await asyncio.wait_for(tab.get_stamped(), 3)
        # On the wire, the envelope an older instance reads as "<origin> <seq>\n<frame>".
        envelope = None
        async with asyncio.timeout(3):
            while envelope is None:
                envelope = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await raw.aclose()
    assert isinstance(stamped, Stamped) and stamped.provenance == stamp
    assert orjson.loads(stamped.frame) == pop and stamped.message == pop
    assert isinstance(plain, bytes) and orjson.loads(plain)["n"] == "plain"
    header, _, frame = envelope["data"].partition(b"\n")
    origin, _, seq = header.partition(b" ")
    assert seq.isdigit() and orjson.loads(frame) == pop
    assert b";" in origin  # the provenance rides on the origin token


async def test_a_frozen_redis_is_noticed_by_a_publish_and_logged_once_each_way(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stops answering but keeps its connections (SIGSTOP): the first publish times out,
    the ones after it go local at once, and a publish after the thaw ends the outage."""
    redis_server = OwnRedis()
    redis_server.start()
    hub = redis_hub(redis_server.url, prefix)
    try:
        await hub.start()
        sub = hub.subscribe(["agent:alice"])
        assert hub.connected and hub.down_reason is None
        with caplog.at_level("WARNING", logger="app.live.brokers"):
            redis_server.freeze()
            await hub.publish("agent:alice", {"type": "note", "n": "1"})  # times out, local
            assert not hub.connected and "Redis unreachable" in (hub.down_reason or "")
            await hub.publish("agent:alice", {"type": "note", "n": "2"})
            assert [(await next_item(sub))["n"] for _ in range(2)] == ["1", "2"]
            redis_server.thaw()
            await eventually(lambda: hub.connected, wait_s=15)
            await hub.publish("agent:alice", {"type": "note", "n": "3"})
            assert (await next_item(sub))["n"] == "3"
        messages = [r.getMessage() for r in caplog.records if r.name == "app.live.brokers"]
        assert sum("Redis unreachable;" in m for m in messages) == 1, messages
        assert sum("Redis reachable again" in m for m in messages) == 1, messages
    finally:
        await hub.close()
        redis_server.close()
