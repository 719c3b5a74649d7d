"""Recorded days of call events used by the queue statistics tests."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from tests.queues.switchboard import Switchboard

T0 = datetime.fromisoformat("2026-03-10T09:00:00+00:00")
AGENTS = ("alice", "bob", "carol", "dave")


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def connections(at: datetime, agents: tuple[str, ...] = AGENTS) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "presence",
            {"type": "agent.connection", "username": a, "connected": True, "at": at.isoformat()},
        )
        for a in agents
    ]


def hand_day(sb: Switchboard, t0: datetime = T0) -> None:
    """Six calls covering every case; the expected figures are worked out in the tests."""

    def s(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    sb.queued("generic:c1", s(0), "sales")
    sb.queued("generic:c4", s(5), "support", match_kind="none", customer_name=None, value_tier=None)
    sb.offered("generic:c1", s(2), "alice", latency_ms=12)
    sb.answered("generic:c1", s(8), "alice")
    sb.queued("generic:c2", s(10), "sales")
    sb.offered("generic:c2", s(12), "bob", latency_ms=30)
    sb.queued("generic:c3", s(20), "sales", customer_name="Grace Hopper", value_tier="low")
    sb.withdrawn("generic:c2", s(27), "bob")  # ring-no-answer: not an abandon
    sb.offered("generic:c2", s(30), "carol", latency_ms=45)
    sb.offered("generic:c4", s(35), "bob", latency_ms=8)
    sb.answered("generic:c2", s(40), "carol")  # waited 30 s: beyond sales' 20 s
    sb.answered("generic:c4", s(40), "bob")  # waited 35 s: beyond support's 30 s
    sb.ended("generic:c3", s(50))  # never answered: abandoned
    sb.transferred("generic:c4", s(70), "dave")
    sb.answered("generic:c4", s(75), "dave")
    sb.ended("generic:c2", s(100))
    sb.ended("generic:c1", s(128))
    sb.queued("generic:c6", s(150), "sales", match_kind="withheld", customer_name=None,
              value_tier=None)  # fmt: skip
    sb.offered("generic:c6", s(150), "alice", latency_ms=20)
    sb.answered("generic:c6", s(155), "alice")
    sb.ended("generic:c4", s(175))
    sb.queued("generic:c5", s(200), "support", match_kind="multiple", customer_name=None,
              value_tier=None)  # fmt: skip


def random_day(sb: Switchboard, seed: int, calls: int = 300) -> None:
    """Many interleaved calls: waits, ring-no-answer, ring-all, transfers, abandons."""
    rng = random.Random(seed)
    queues = ("sales", "support", "billing")
    free = {a: 0.0 for a in AGENTS}  # agent -> when free
    script: list[tuple[float, int, str, tuple[Any, ...]]] = []
    seq = 0

    def at(t: float, action: str, *args: Any) -> None:
        nonlocal seq
        seq += 1
        script.append((t, seq, action, args))

    for n in range(calls):
        cid = f"generic:r{n}"
        start = n * 20 + rng.uniform(0, 15)
        kind = rng.choice(("single", "single", "none", "multiple", "withheld"))
        at(start, "queued", cid, rng.choice(queues), kind)
        t = start + rng.uniform(1, 40)
        if rng.random() < 0.15:
            at(t, "ended", cid)  # abandoned while queued
            continue
        agent = min(free, key=lambda a: free[a])
        t = max(t, free[agent] + 1)
        at(t, "offered", cid, agent, rng.uniform(2, 80))
        if rng.random() < 0.2:  # ring-no-answer, then another agent
            at(t + 10, "withdrawn", cid, agent)
            free[agent] = t + 10
            agent = min((a for a in AGENTS if a != agent), key=lambda a: free[a])
            t = max(t + 11, free[agent] + 1)
            at(t, "offered", cid, agent, rng.uniform(2, 80))
        if rng.random() < 0.1:  # caller gives up while ringing
            at(t + 5, "ended", cid)
            free[agent] = t + 5
            continue
        at(t + 3, "answered", cid, agent)
        end = t + 3 + rng.uniform(30, 300)
        if rng.random() < 0.15:
            other = min((a for a in AGENTS if a != agent), key=lambda a: free[a])
            mid = t + 3 + rng.uniform(10, 60)
            at(mid, "transferred", cid, other)
            at(mid + 4, "answered", cid, other)
            free[agent] = mid
            free[other] = end = max(end, mid + 30)
        else:
            free[agent] = end
        if rng.random() < 0.9:
            at(end, "ended", cid)
    script.sort()
    for t, _, action, args in script:
        if action == "queued":
            cid, queue, kind = args
            named = kind == "single"
            sb.queued(cid, s(t), queue, match_kind=kind,
                      customer_name="Ada Lovelace" if named else None,
                      value_tier="high" if named else None)  # fmt: skip
        elif action == "offered":
            sb.offered(args[0], s(t), args[1], latency_ms=round(args[2], 3))
        elif action == "ended":
            sb.ended(args[0], s(t))
        else:
            getattr(sb, action)(args[0], s(t), *args[1:])
