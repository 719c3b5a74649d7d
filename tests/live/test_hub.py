"""The hub with the in-process broker: fan-out, listeners, overflow, resync, close."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from app.live.hub import Hub, build_hub
from app.live.subscription import Overflowed, ResyncRequired, SubscriptionClosed
from app.settings import Settings


def frames(sub: Any) -> list[dict[str, Any]]:
    out = []
    while (frame := sub.get_nowait()) is not None:
        out.append(orjson.loads(frame))
    return out


async def test_publish_reaches_every_subscriber_of_the_channel_only() -> None:
    hub = Hub()
    await hub.start()
    alice_tab1 = hub.subscribe(["agent:alice"])
    alice_tab2 = hub.subscribe(["agent:alice"])
    bob = hub.subscribe(["agent:bob"])
    wallboard = hub.subscribe(["supervisor:sales", "supervisor:support"])

    await hub.publish("agent:alice", {"type": "pop", "version": 1, "call": {"id": "c1"}})
    await hub.publish("supervisor:support", {"type": "queues", "n": 1})

    assert [m["call"]["id"] for m in frames(alice_tab1)] == ["c1"]
    assert [m["call"]["id"] for m in frames(alice_tab2)] == ["c1"]
    assert frames(bob) == []
    assert frames(wallboard) == [{"type": "queues", "n": 1}]
    await hub.close()


async def test_one_encoding_is_shared_by_all_subscribers() -> None:
    hub = Hub()
    await hub.start()
    a, b = hub.subscribe(["x"]), hub.subscribe(["x"])
    await hub.publish("x", {"type": "note"})
    assert a.get_nowait() is b.get_nowait()
    await hub.close()


async def test_unsubscribe_stops_delivery_and_forgets_the_channel() -> None:
    hub = Hub()
    await hub.start()
    sub = hub.subscribe(["agent:alice"])
    assert hub.subscriber_count("agent:alice") == 1
    hub.unsubscribe(sub)
    hub.unsubscribe(sub)  # idempotent
    await hub.publish("agent:alice", {"type": "note"})
    assert hub.subscriber_count("agent:alice") == 0
    assert hub.subscriber_count() == 0
    assert sub.get_nowait() is None
    await hub.close()


async def test_listeners_run_before_publish_returns_and_a_failing_one_is_contained() -> None:
    hub = Hub()
    await hub.start()
    seen: list[tuple[str, dict[str, Any]]] = []

    async def broken(channel: str, message: dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    async def record(channel: str, message: dict[str, Any]) -> None:
        seen.append((channel, message))

    hub.add_listener("calls", broken)
    hub.add_listener("calls", record)
    await hub.publish("calls", {"type": "call.change", "call_id": "c1"})
    assert seen == [("calls", {"type": "call.change", "call_id": "c1"})]

    hub.remove_listener("calls", record)
    await hub.publish("calls", {"type": "call.change", "call_id": "c2"})
    assert len(seen) == 1
    await hub.close()


async def test_a_slow_consumer_is_overflowed_and_detached_others_unaffected() -> None:
    hub = Hub(queue_size=4)
    await hub.start()
    slow = hub.subscribe(["agent:alice"])
    fast = hub.subscribe(["agent:alice"])
    for i in range(6):
        await hub.publish("agent:alice", {"type": "pop", "version": 1, "call": {"id": f"c{i}"}})
        # The fast consumer keeps up; the slow one never reads.
        assert fast.get_nowait() is not None
    assert slow.overflowed
    assert hub.overflows == 1
    assert hub.subscriber_count("agent:alice") == 1
    with pytest.raises(Overflowed):
        await slow.get()
    await hub.close()


async def test_request_resync_signals_subscriptions_and_callbacks() -> None:
    hub = Hub()
    await hub.start()
    sub = hub.subscribe(["agent:alice"])
    calls: list[str] = []
    done = asyncio.Event()

    async def rebuild() -> None:
        calls.append("async")
        done.set()

    hub.on_reconnect(lambda: calls.append("sync"))
    hub.on_reconnect(rebuild)
    hub.request_resync()
    await asyncio.wait_for(done.wait(), 1)
    assert calls == ["sync", "async"]
    with pytest.raises(ResyncRequired):
        await sub.get()
    await hub.close()


async def test_close_ends_every_subscription() -> None:
    hub = Hub()
    await hub.start()
    sub = hub.subscribe(["agent:alice"])
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    await hub.close()
    with pytest.raises(SubscriptionClosed):
        await asyncio.wait_for(waiter, 1)


async def test_publish_before_start_still_delivers() -> None:
    hub = Hub()
    sub = hub.subscribe(["x"])
    await hub.publish("x", {"type": "note"})
    assert frames(sub) == [{"type": "note"}]
    await hub.close()


async def test_publish_after_close_is_dropped_without_restarting() -> None:
    hub = Hub()
    await hub.start()
    seen: list[dict[str, Any]] = []

    async def listen(channel: str, message: dict[str, Any]) -> None:
        seen.append(message)

    hub.add_listener("presence", listen)
    await hub.close()
    await hub.publish("presence", {"type": "agent.connection", "connected": False})
    assert seen == []
    assert not hub._started


async def test_publish_refuses_a_message_it_cannot_encode() -> None:
    hub = Hub()
    await hub.start()
    with pytest.raises(TypeError):
        await hub.publish("x", {"bad": object()})
    await hub.close()


def test_build_hub_picks_the_broker_from_the_settings() -> None:
    memory = build_hub(Settings(redis_url=None))
    assert type(memory.broker).__name__ == "MemoryBroker"
    redis = build_hub(Settings(redis_url="redis://127.0.0.1:6379/0", redis_prefix="p1"))
    assert type(redis.broker).__name__ == "RedisBroker"
    assert redis.broker.prefix == "p1"  # type: ignore[attr-defined]
