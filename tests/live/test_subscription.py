"""The per-websocket bounded queue: coalescing, pop de-duplication, overflow, signals."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson
import pytest

from app.live.subscription import (
    Overflowed,
    ResyncRequired,
    Subscription,
    SubscriptionClosed,
    encode,
)


def offer(sub: Subscription, channel: str, message: dict[str, Any]) -> bool:
    return sub.offer(channel, message, encode(message))


def drain(sub: Subscription) -> list[dict[str, Any]]:
    out = []
    while (frame := sub.get_nowait()) is not None:
        out.append(orjson.loads(frame))
    return out


def pop(call_id: str, version: int) -> dict[str, Any]:
    return {"type": "pop", "version": version, "call": {"id": call_id, "state": "ringing"}}


def test_frames_come_out_in_order() -> None:
    sub = Subscription(["agent:a"], maxsize=8)
    for i in range(3):
        assert offer(sub, "agent:a", {"type": "note", "n": i})
    assert [m["n"] for m in drain(sub)] == [0, 1, 2]


def test_call_state_coalesces_to_the_newest_behind_a_later_pop() -> None:
    sub = Subscription(["agent:a"], maxsize=8)
    offer(sub, "agent:a", {"type": "call.state", "call_id": "c1", "state": "ringing"})
    offer(sub, "agent:a", pop("c1", 1))
    offer(sub, "agent:a", {"type": "call.state", "call_id": "c2", "state": "ringing"})
    offer(sub, "agent:a", {"type": "call.state", "call_id": "c1", "state": "ended"})
    got = drain(sub)
    # The superseded "ringing" for c1 is gone; "ended" comes after the pop, not before it.
    assert [(m["type"], m.get("call_id") or m["call"]["id"]) for m in got] == [
        ("pop", "c1"),
        ("call.state", "c2"),
        ("call.state", "c1"),
    ]
    assert got[2]["state"] == "ended"
    assert sub.coalesced == 1


def test_snapshots_coalesce_per_channel() -> None:
    sub = Subscription(["supervisor:sales", "supervisor:support"], maxsize=8)
    for n in range(5):
        offer(sub, "supervisor:sales", {"type": "queues", "n": n})
        offer(sub, "supervisor:support", {"type": "queues", "n": 100 + n})
    assert [m["n"] for m in drain(sub)] == [4, 104]


def test_full_queue_coalesces_instead_of_overflowing() -> None:
    sub = Subscription(["agent:a"], maxsize=2)
    offer(sub, "agent:a", pop("c1", 1))
    offer(sub, "agent:a", {"type": "call.state", "call_id": "c1", "state": "ringing"})
    for state in ("answered", "held", "answered", "ended"):
        assert offer(sub, "agent:a", {"type": "call.state", "call_id": "c1", "state": state})
    assert not sub.overflowed
    assert [m["type"] for m in drain(sub)] == ["pop", "call.state"]


async def test_pops_are_never_dropped_a_full_queue_overflows_instead() -> None:
    sub = Subscription(["agent:a"], maxsize=3)
    for i in range(3):
        assert offer(sub, "agent:a", pop(f"c{i}", 1))
    assert not sub.overflowed
    assert not offer(sub, "agent:a", pop("c9", 1))
    assert sub.overflowed
    # Overflowed: the consumer is told to close (4008), nothing is half-delivered.
    assert sub.get_nowait() is None
    with pytest.raises(Overflowed):
        await sub.get()


def test_same_or_older_pop_version_is_dropped_newer_goes_through() -> None:
    sub = Subscription(["agent:a"], maxsize=8)
    assert offer(sub, "agent:a", pop("c1", 2))
    assert not offer(sub, "agent:a", pop("c1", 2))
    assert not offer(sub, "agent:a", pop("c1", 1))
    assert offer(sub, "agent:a", pop("c1", 3))
    assert offer(sub, "agent:a", {"type": "pop.update", "call_id": "c1", "version": 4})
    assert not offer(sub, "agent:a", {"type": "pop.update", "call_id": "c1", "version": 4})
    # A pop overtaken by the update that completes it (the completion raced the offer's
    # publish): the older pop is dropped, not shown over the newer document.
    assert not offer(sub, "agent:a", pop("c1", 3))
    assert sub.duplicates == 4
    assert [(m["type"], m["version"]) for m in drain(sub)] == [
        ("pop", 2),
        ("pop", 3),
        ("pop.update", 4),
    ]


def test_call_state_lets_a_reoffered_call_pop_again() -> None:
    sub = Subscription(["agent:a"], maxsize=8)
    assert offer(sub, "agent:a", pop("c1", 1))
    offer(sub, "agent:a", {"type": "call.state", "call_id": "c1", "state": "queued"})
    assert offer(sub, "agent:a", pop("c1", 1))
    assert [m["type"] for m in drain(sub)] == ["pop", "call.state", "pop"]


def test_push_goes_through_the_same_dedupe() -> None:
    sub = Subscription(["agent:a"], maxsize=8)
    offer(sub, "agent:a", pop("c1", 4))
    assert not sub.push(pop("c1", 4))  # a replay of what was already queued
    assert sub.push(pop("c2", 1))
    assert len(drain(sub)) == 2


async def test_get_waits_for_a_frame_and_signals_resync_then_close() -> None:
    sub = Subscription(["agent:a"], maxsize=8)
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    offer(sub, "agent:a", {"type": "note"})
    assert orjson.loads(await asyncio.wait_for(waiter, 1)) == {"type": "note"}

    sub.request_resync()
    with pytest.raises(ResyncRequired):
        await sub.get()
    offer(sub, "agent:a", {"type": "note", "n": 1})
    assert orjson.loads(await sub.get())["n"] == 1  # the signal fires once

    closer = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    sub.close()
    with pytest.raises(SubscriptionClosed):
        await asyncio.wait_for(closer, 1)
    assert not offer(sub, "agent:a", {"type": "note"})


def test_encode_handles_money_and_refuses_the_unknown() -> None:
    assert orjson.loads(encode({"balance": Decimal("12.50")})) == {"balance": 12.5}
    assert b"\n" not in encode({"text": "two\nlines"})
    with pytest.raises(TypeError):
        encode({"x": object()})
