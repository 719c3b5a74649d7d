"""Agents on websockets and an open-loop generator of signed call events, with the timings.

The generator plans every call up front (Poisson arrivals, one agent per offer, the agent busy
until the call ends) and fires each event at its planned time whether or not earlier requests
have answered (open loop: a slow server does not slow the offered load, it shows as latency).
A pop's latency is measured from just before its ``offered`` POST is written to the moment
the pop frame for that call is read on the offered agent's websocket, in this one process
(one monotonic clock).
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import websockets

from app import gc_policy
from telephony.generic import sign_generic

ABANDON_SHARE = 0.04
WITHHELD_SHARE = 0.03
UNKNOWN_SHARE = 0.05
NON_BUYER_SHARE = 0.07
ANSWER_AFTER_S = 2.0  # issue 4: the answer comes 2 s after the offer
LOST_AFTER_S = 5.0


@dataclass
class Agent:
    username: str
    token: str
    queue: str
    url: str  # websocket base of the instance this agent is connected to
    ws: Any = None
    frames: int = 0
    # call id (generic:...) -> monotonic time of the first pop frame for it
    pops: dict[str, float] = field(default_factory=dict)


@dataclass
class PlannedEvent:
    at: float  # seconds after the start
    call_id: str
    kind: str
    caller: str
    dialed: str
    queue: str
    agent: str | None


@dataclass
class Outcome:
    """Everything measured in one load run."""

    rate: float
    duration: float
    events_sent: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    offer_sent: dict[str, tuple[float, str]] = field(default_factory=dict)  # call -> (t, agent)
    answer_sent: dict[str, float] = field(default_factory=dict)
    loop_lag_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)  # generator behind its schedule

    def latencies(self, agents: dict[str, Agent]) -> tuple[list[float], int]:
        """(pop latencies in ms, offers whose pop never arrived within LOST_AFTER_S)."""
        out: list[float] = []
        lost = 0
        for call_id, (sent, agent) in self.offer_sent.items():
            got = agents[agent].pops.get(f"generic:{call_id}")
            if got is None or got - sent > LOST_AFTER_S:
                lost += 1
            else:
                out.append((got - sent) * 1000)
        return out, lost

    def popped_before_answer(self, agents: dict[str, Agent]) -> tuple[int, int]:
        """(calls whose pop arrived before their answer event was sent, calls answered)."""
        ok = total = 0
        for call_id, answered in self.answer_sent.items():
            sent = self.offer_sent.get(call_id)
            if sent is None:
                continue
            total += 1
            got = agents[sent[1]].pops.get(f"generic:{call_id}")
            ok += got is not None and got < answered
        return ok, total


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


# --- agents -------------------------------------------------------------------------------------
async def _reader(agent: Agent) -> None:
    ws = agent.ws
    try:
        async for raw in ws:
            now = time.perf_counter()
            agent.frames += 1
            message = orjson.loads(raw)
            if message.get("type") == "pop":
                call_id = message.get("call", {}).get("id", "")
                agent.pops.setdefault(call_id, now)
                version = message.get("version")
                if version is not None:
                    await ws.send(
                        orjson.dumps(
                            {"type": "ack", "call_id": call_id, "version": version}
                        ).decode()
                    )
    except websockets.ConnectionClosed:
        pass


async def connect_agents(
    agents: Sequence[Agent], path: str, batch: int = 100, open_timeout: float = 60
) -> list[asyncio.Task[None]]:
    """Open every agent's websocket (``path`` like '/ws/agent?token={token}') in batches."""

    async def one(agent: Agent) -> None:
        url = agent.url + path.format(token=agent.token, username=agent.username)
        # Client pings are staggered by connect time; the server pings too.
        agent.ws = await websockets.connect(
            url, ping_interval=30, ping_timeout=30, max_size=2**22, open_timeout=open_timeout
        )

    for start in range(0, len(agents), batch):
        await asyncio.gather(*(one(a) for a in agents[start : start + batch]))
    readers = [asyncio.create_task(_reader(a)) for a in agents]
    # The generator is an instrument: 2,000 client websockets are ~400k objects, and a full
    # collection of them (50-110 ms, seen with gc.callbacks) would stamp every frame read
    # meanwhile late. The server's policy, for the same reason (app/gc_policy.py).
    gc_policy.tune_for_serving()
    return readers


async def close_agents(agents: Sequence[Agent], readers: Sequence[asyncio.Task[None]]) -> None:
    await asyncio.gather(
        *(a.ws.close() for a in agents if a.ws is not None), return_exceptions=True
    )
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


# --- the plan ----------------------------------------------------------------------------------
def plan_calls(
    *,
    call_rate: float,
    duration: float,
    agents_by_queue: dict[str, list[str]],
    dids: dict[str, str],
    buyers: Sequence[str],
    others: Sequence[str],
    unknown: Sequence[str],
    seed: int,
    answer_after_s: float = ANSWER_AFTER_S,
) -> list[PlannedEvent]:
    """Every event of every call starting in [0, duration), sorted by time."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    queues = sorted(agents_by_queue)
    free: dict[str, list[tuple[float, str]]] = {
        q: [(0.0, a) for a in names] for q, names in agents_by_queue.items()
    }
    for heap in free.values():
        heapq.heapify(heap)
    events: list[PlannedEvent] = []
    t = 0.0
    n = 0
    while True:
        t += rng.expovariate(call_rate)
        if t >= duration:
            break
        n += 1
        call_id = f"b{run}-{n}"
        r = rng.random()
        if r < WITHHELD_SHARE:
            caller = "anonymous"
        elif r < WITHHELD_SHARE + UNKNOWN_SHARE:
            caller = rng.choice(unknown)
        elif r < WITHHELD_SHARE + UNKNOWN_SHARE + NON_BUYER_SHARE and others:
            caller = rng.choice(others)
        else:
            caller = rng.choice(buyers)
        queue = rng.choice(queues)
        base = PlannedEvent(t, call_id, "queued", caller, dids[queue], queue, None)
        events.append(base)
        if rng.random() < ABANDON_SHARE:
            events.append(_with(base, t + rng.uniform(1, 5), "abandoned", None))
            continue
        offered = t + rng.uniform(0.5, 2.0)
        answered = offered + answer_after_s
        ended = answered + rng.uniform(1.0, 4.0)
        free_at, agent = heapq.heappop(free[queue])  # the longest-free agent (or the soonest)
        heapq.heappush(free[queue], (max(free_at, ended + 0.5), agent))
        events.append(_with(base, offered, "offered", agent))
        events.append(_with(base, answered, "answered", agent))
        events.append(_with(base, ended, "ended", agent))
    events.sort(key=lambda e: e.at)
    return events


def _with(base: PlannedEvent, at: float, kind: str, agent: str | None) -> PlannedEvent:
    return PlannedEvent(at, base.call_id, kind, base.caller, base.dialed, base.queue, agent)


EVENTS_PER_CALL = (1 - ABANDON_SHARE) * 4 + ABANDON_SHARE * 2


# --- the generator -----------------------------------------------------------------------------
async def _lag_monitor(outcome: Outcome, stop: asyncio.Event) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.01)
        outcome.loop_lag_ms.append((time.perf_counter() - t - 0.01) * 1000)


async def run_events(
    events: Sequence[PlannedEvent],
    *,
    post_urls: Sequence[str],
    secret: str,
    rate: float,
    duration: float,
    settle_s: float = LOST_AFTER_S,
) -> Outcome:
    """Fire the planned events on time (round-robin over ``post_urls``); wait for the stragglers."""
    outcome = Outcome(rate=rate, duration=duration)
    connector = aiohttp.TCPConnector(limit=512, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    stop = asyncio.Event()
    monitor = asyncio.create_task(_lag_monitor(outcome, stop))
    pending: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def post(i: int, ev: PlannedEvent) -> None:
            payload: dict[str, Any] = {
                "event_id": f"{ev.call_id}:{ev.kind}",
                "call_id": ev.call_id,
                "kind": ev.kind,
                "caller": ev.caller,
                "dialed": ev.dialed,
                "queue": ev.queue,
                "occurred_at": datetime.now(UTC).isoformat(),
            }
            if ev.agent is not None:
                payload["agent"] = ev.agent
            body = orjson.dumps(payload)
            headers = {
                "content-type": "application/json",
                "X-Screenpop-Signature": sign_generic(secret, body, int(time.time())),
            }
            url = post_urls[i % len(post_urls)]
            sent = time.perf_counter()
            if ev.kind == "offered" and ev.agent is not None:
                outcome.offer_sent[ev.call_id] = (sent, ev.agent)
            elif ev.kind == "answered":
                outcome.answer_sent[ev.call_id] = sent
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    text = await resp.read()
                    if not 200 <= resp.status < 300:
                        outcome.errors += 1
                        if len(outcome.error_samples) < 5:
                            outcome.error_samples.append(f"{resp.status} {text[:200]!r}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome.errors += 1
                if len(outcome.error_samples) < 5:
                    outcome.error_samples.append(repr(exc))
            outcome.post_ms.append((time.perf_counter() - sent) * 1000)

        start = time.perf_counter()
        for i, ev in enumerate(events):
            delay = start + ev.at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                outcome.late_ms.append(-delay * 1000)
            task = asyncio.create_task(post(i, ev))
            pending.add(task)
            task.add_done_callback(pending.discard)
            outcome.events_sent += 1
        if pending:
            await asyncio.wait(pending, timeout=30)
        await asyncio.sleep(settle_s if outcome.offer_sent else 0)
    stop.set()
    await monitor
    return outcome
