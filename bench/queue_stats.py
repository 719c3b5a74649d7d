"""Queue statistics under load: 50 queues, 500 agents, 200 call events per second.

Call durations are compressed (seconds, not minutes) so that 500 agents can take the calls
that 200 events/s bring (about 40 calls/s); the cost per event does not depend on durations.

Drives ``QueueStats`` in-process with ``call.change``/``pop.pushed`` messages produced by the
calls domain's own state machine (ring-all, ring-no-answer, transfers, abandons), and prints:

- per-event update latency (p50/p99/max) and CPU share at a paced 200 events/s;
- flat-out throughput and the latency per slice of a long day (it must not grow: O(1));
- the cost of one admin snapshot (every queue and agent) and of one supervisor's scope.

    .venv/bin/python bench/queue_stats.py [--seconds 10] [--day-events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import random
import resource
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from app.calls import state_machine
from app.calls.state_machine import CallFacts, Step
from app.queues.stats import QueueStats

QUEUES = [f"q{n:02d}" for n in range(50)]
AGENTS = [f"agent{n:03d}" for n in range(500)]


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def events(seed: int, start: datetime, rate: float) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """An endless, time-ordered stream of messages at about ``rate`` call events per second."""
    rng = random.Random(seed)
    facts: dict[str, CallFacts] = {}
    meta: dict[str, tuple[str, str]] = {}
    free = list(AGENTS)
    rng.shuffle(free)
    timeline: list[tuple[float, int, str, Step]] = []

    seq = 0
    calls_per_s = rate / 5.2  # about five events per call
    t = 0.0
    n = 0
    while True:
        # Schedule new calls up to a little ahead of the earliest pending event.
        while not timeline or t <= timeline[0][0] + 5:
            n += 1
            cid = f"bench:{n}"
            meta[cid] = (rng.choice(QUEUES), rng.choice(("single", "single", "none", "multiple")))
            base = t
            seq += 1
            heapq.heappush(timeline, (base, seq, cid, Step("queued", start)))
            t += rng.expovariate(calls_per_s)
        at, _, cid, step = heapq.heappop(timeline)
        moment = start + timedelta(seconds=at)
        step = Step(step.kind, moment, step.agent, step.withdrawn, step.transfer_to)
        old = facts.get(cid, CallFacts())
        outcome = state_machine.apply(old, step)
        facts[cid] = f = outcome.facts
        queue, match = meta[cid]
        yield (
            moment,
            {
                "type": "call.change",
                "call_id": cid,
                "event_kind": step.kind,
                "occurred_at": moment.isoformat(),
                "old_state": old.state,
                "state": f.state,
                "queue": queue,
                "agent": f.agent,
                "offered_to": list(f.offered_to),
                "withdrawn_from": list(outcome.withdrawn),
                "caller": {"raw": "+447700900123", "e164": "+447700900123", "withheld": False},
                "customer_name": "Ada Lovelace" if match == "single" else None,
                "value_tier": "high" if match == "single" else None,
                "match_kind": match,
                "queued_at": _iso(f.queued_at),
                "answered_at": _iso(f.answered_at),
                "ended_at": _iso(f.ended_at),
            },
        )

        def later(delay: float, nxt: Step, at: float = at, cid: str = cid) -> None:
            nonlocal seq
            seq += 1
            heapq.heappush(timeline, (at + delay, seq, cid, nxt))

        kind = step.kind
        if kind == "queued" and not step.withdrawn:
            if rng.random() < 0.08:
                later(rng.uniform(5, 60), Step("abandoned", start))
            elif free:
                agent = free.pop()
                later(rng.uniform(0.5, 3), Step("offered", start, agent=agent))
            else:
                later(rng.uniform(20, 40), Step("abandoned", start))
        elif kind == "offered":
            yield (
                moment,
                {
                    "type": "pop.pushed",
                    "call_id": cid,
                    "agent": step.agent,
                    "queue": queue,
                    "latency_ms": rng.lognormvariate(2.5, 0.6),
                },
            )
            if rng.random() < 0.1:  # ring-no-answer, back to the queue
                later(4, Step("queued", start, agent=step.agent, withdrawn=True))
            else:
                later(rng.uniform(1, 4), Step("answered", start, agent=step.agent))
        elif kind == "queued" and step.withdrawn:
            assert step.agent
            free.insert(0, step.agent)
            if free:
                later(1, Step("offered", start, agent=free.pop()))
        elif kind == "answered":
            if rng.random() < 0.05 and free:
                later(rng.uniform(1, 3), Step("transferred", start, transfer_to=free.pop()))
            else:
                later(rng.uniform(2, 7), Step("ended", start))
        elif kind == "transferred":
            assert step.agent is None and old.agent
            free.insert(0, old.agent)
            later(rng.uniform(2, 5), Step("ended", start))
        elif kind == "ended" and old.agent:
            free.insert(0, old.agent)
        elif kind == "abandoned" and old.offered_to:
            free.extend(old.offered_to)
        if f.state in state_machine.FINAL_STATES:
            del facts[cid], meta[cid]


def apply(stats: QueueStats, moment: datetime, message: dict[str, Any]) -> int:
    """Fold one message; returns the nanoseconds it took."""
    t0 = time.perf_counter_ns()
    if message["type"] == "call.change":
        stats.apply_call_change(message, now=moment)
    else:
        stats.apply_pop_pushed(message, now=moment)
    return time.perf_counter_ns() - t0


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


async def paced(seconds: float, rate: float) -> None:
    """Real time, ``rate`` call events per second: update latency and CPU share."""
    start = datetime.now(UTC).replace(hour=8, minute=0)
    stats = QueueStats("UTC", {q: 20 for q in QUEUES}, now=start)
    for a in AGENTS:
        stats.apply_presence(
            {"type": "agent.connection", "username": a, "connected": True, "at": start}, now=start
        )
    stream = events(1, start, rate)
    latencies: list[int] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    sent = 0
    while time.perf_counter() - wall0 < seconds:
        due = int((time.perf_counter() - wall0) * rate)
        while sent < due:
            moment, message = next(stream)
            latencies.append(apply(stats, moment, message))
            sent += message["type"] == "call.change"
        await asyncio.sleep(0.005)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"paced: {sent} call events in {wall:.1f} s ({sent / wall:.0f}/s), "
          f"{len(latencies)} messages incl. pops")  # fmt: skip
    print(f"  update latency p50 {pct(latencies, 0.5):.1f} us, p99 {pct(latencies, 0.99):.1f} us, "
          f"max {max(latencies) / 1000:.1f} us")  # fmt: skip
    print(f"  CPU {100 * cpu / wall:.1f} % of one core (includes generating the events)")
    fold_cpu = sum(latencies) / 1e9
    print(f"  CPU in QueueStats alone {100 * fold_cpu / wall:.2f} % of one core")
    snap_admin = timed(lambda: stats.snapshot(now=start + timedelta(seconds=seconds)))
    scope_agents = AGENTS[:10]
    snap_scope = timed(lambda: stats.snapshot(["q00"], scope_agents))
    print(f"  snapshot: all 50 queues + 500 agents {snap_admin:.2f} ms; "
          f"one queue + 10 agents {snap_scope:.3f} ms")  # fmt: skip


def timed(fn: Any, repeat: int = 50) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def flat_out(day_events: int) -> None:
    """As fast as possible through a long day: per-slice latency must stay flat (O(1))."""
    start = datetime.now(UTC).replace(hour=0, minute=0, second=1)
    stats = QueueStats("UTC", {q: 20 for q in QUEUES}, now=start)
    stream = events(2, start, 200.0)
    slices = 5
    per_slice = day_events // slices
    print(f"flat out: {day_events} call events (a {day_events / 200 / 3600:.1f} h day at 200/s)")
    total_ns = 0
    done = 0
    for n in range(slices):
        latencies = []
        counted = 0
        while counted < per_slice:
            moment, message = next(stream)
            latencies.append(apply(stats, moment, message))
            counted += message["type"] == "call.change"
        total_ns += sum(latencies)
        done += counted
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  slice {n + 1}: p50 {pct(latencies, 0.5):.1f} us, p99 {pct(latencies, 0.99):.1f} "
              f"us; calls kept {len(stats.calls)}; max RSS {rss:.0f} MB")  # fmt: skip
    print(f"  throughput {done / (total_ns / 1e9):,.0f} call events/s in QueueStats on one core")
    offered = sum(f.offered for f in stats.queues.values())
    print(f"  figures: offered {offered}, handled {sum(stats.handled.values())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--day-events", type=int, default=1_000_000)
    args = parser.parse_args()
    asyncio.run(paced(args.seconds, args.rate))
    flat_out(args.day_events)


if __name__ == "__main__":
    main()
