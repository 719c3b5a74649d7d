"""A simulated PBX for the working-day scenario: it picks agents, plays calls as signed generic
events into whichever screenpop servers are up, and books every event screenpop accepted.

Two ways to play a call:

* ``play_backlog``: the morning's calls, hours old, delivered at full speed, each call's
  events in order (several calls at once);
* ``live_call``: a call played in real time, its events stamped when they happen. A call
  whose events wait behind a paused switch (a server restart) is delivered later with the
  times it happened, as a PBX retrying its webhooks does.

Nobody here reads screenpop's figures: ``day_book`` counts them from the book.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.users import security
from telephony.generic import sign_generic
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET
from tests.queues.day_book import Book, CallRecord, utc

# Queue -> (service level threshold s, wrap-up s).
QUEUES = {"sales": (2, 2), "support": (3, 1)}
# A live call that will lose its end is delivered this late (as a PBX working through a
# backlog would), so it is idle for SCREENPOP_CALL_MAX_IDLE_S sooner than the others.
LATE = timedelta(seconds=40)


@dataclass
class Agent:
    username: str
    extension: str
    queues: tuple[str, ...]
    busy: bool = False
    on_rota: bool = True  # the PBX offers them calls


# One event of the backlog: when, kind, agent, the body's other fields (and "rec").
Step = tuple[datetime, str, Agent | None, dict[str, Any]]


def staff() -> list[Agent]:
    """Twenty agents on desk phones, and three who also have the agent page open."""
    desk = [
        Agent(f"desk{n:02d}", str(300 + n), ("sales",) if n <= 10 else ("support",))
        for n in range(1, 21)
    ]
    return [
        *desk,
        Agent("alice", "201", ("sales", "support")),
        Agent("bob", "202", ("sales",)),
        Agent("carol", "203", ("support",)),
    ]


def token(username: str, role: str = "agent") -> str:
    return security.issue_token(TEST_JWT_SECRET, username=username, role=role, ttl_s=3600)


def seconds(a: float, b: float, rng: random.Random) -> timedelta:
    return timedelta(seconds=rng.uniform(a, b))


async def until(moment: datetime) -> datetime:
    """Sleep until ``moment``; the later of it and now, to whole milliseconds."""
    delay = (moment - datetime.now(UTC)).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)
    return utc(max(moment, datetime.now(UTC)))


class Switch:
    """The PBX: its agents, the servers it posts to, and a gate that holds its events while
    a server restarts."""

    def __init__(self, book: Book, seed: int) -> None:
        self.book = book
        self.rng = random.Random(seed)
        self.agents = {a.username: a for a in staff()}
        self.urls: list[str] = []
        self.http = httpx.AsyncClient(timeout=30)
        self.gate = asyncio.Event()
        self.gate.set()
        self.inflight = 0
        self._quiet = asyncio.Event()  # set while nothing is on the wire
        self._quiet.set()
        self._freed = asyncio.Condition()  # notified when the PBX frees an agent
        self.tasks: list[asyncio.Task[None]] = []
        self.late_wrapups: list[tuple[str, str]] = []
        self._turn = itertools.count()
        self._ids = itertools.count(1)
        self._calls = itertools.count(1)
        self.late: dict[str, timedelta] = {}  # call id -> how late its events are delivered
        self._may_lose: list[asyncio.Task[None]] = []

    # -- the wire ----------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        path: str,
        ok: Collection[int],
        headers_fn: Callable[[], dict[str, str]],
        **kwargs: Any,
    ) -> httpx.Response:
        """One request to the next server up, retried over a paused gate, a 503 or a
        connection refused; the same body each time (events are de-duplicated by id)."""
        for _ in range(300):
            while not self.gate.is_set():  # woken by a resume, then paused again
                await self.gate.wait()
            self.inflight += 1
            self._quiet.clear()
            try:
                url = self.urls[next(self._turn) % len(self.urls)]
                headers = headers_fn()
                response: httpx.Response | None = await self.http.request(
                    method, url + path, headers=headers, **kwargs
                )
            except httpx.TransportError:
                response = None
            finally:
                self.inflight -= 1
                if not self.inflight:
                    self._quiet.set()
            if response is not None and response.status_code in ok:
                return response
            if response is not None and response.status_code != 503:
                raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
            await asyncio.sleep(0.2)
        raise AssertionError(f"{method} {path}: no server took it")

    async def event(
        self, rec: CallRecord, kind: str, at: datetime, agent: Agent | None = None,
        **fields: Any,
    ) -> None:  # fmt: skip
        """Post one event of ``rec`` that happened at ``at`` (less the call's lateness) and
        book it once accepted."""
        at -= self.late.get(rec.call_id, timedelta(0))
        body = {
            "event_id": f"{rec.call_id}-{next(self._ids)}",
            "call_id": rec.call_id,
            "kind": kind,
            "caller": f"+4477009{int(rec.call_id[1:]) % 100000:05d}",
            "queue": rec.queue,
            "occurred_at": at.isoformat(),
            **fields,
        }
        if agent is not None:
            body["agent"] = agent.extension
        raw = json.dumps(body).encode()

        def headers() -> dict[str, str]:
            return {
                "content-type": "application/json",
                "x-screenpop-signature": sign_generic(TEST_WEBHOOK_SECRET, raw, int(time.time())),
            }

        await self.send("POST", "/telephony/generic/events", (202,), content=raw,
                        headers_fn=headers)  # fmt: skip
        withdrawn = bool(fields.get("attributes", {}).get("offer_withdrawn"))
        target = fields.get("attributes", {}).get("transfer_to")
        who = agent.username if agent else None
        if target is not None:
            who = next(a.username for a in self.agents.values() if a.extension == target)
        self.book.sent(rec, kind, at, who, withdrawn=withdrawn)

    async def wrapup(self, call_id: str, username: str) -> None:
        await self.send(
            "POST", f"/api/calls/generic:{call_id}/wrapup", (201,),
            json={"disposition": "resolved"},
            headers_fn=lambda: {"Authorization": f"Bearer {token(username)}"},
        )  # fmt: skip
        self.book.wrapups[username] = self.book.wrapups.get(username, 0) + 1

    async def set_status(self, username: str, state: str) -> None:
        """The agent's own choice, once free; while screenpop still has them on a call
        (409), again (for up to a minute)."""
        agent = self.agents[username]
        async with self._freed:
            await self._freed.wait_for(lambda: not agent.busy)
        for _ in range(300):
            response = await self.send(
                "POST", "/api/agents/me/status", (200, 409), json={"state": state},
                headers_fn=lambda: {"Authorization": f"Bearer {token(username)}"},
            )  # fmt: skip
            if response.status_code == 200:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{username} could not become {state}")

    async def pause(self) -> None:
        """Hold every event from now on, and wait for those on the wire; first, let the
        calls that may lose their end say all they will (late as they are, a restart's wait
        between two of their events could make them idle too soon)."""
        await asyncio.gather(*self._may_lose)
        self.gate.clear()
        await self._quiet.wait()

    def resume(self) -> None:
        self.gate.set()

    # -- agents ------------------------------------------------------------------------------

    def free_agent(self, queue: str, besides: Collection[str] = ()) -> Agent | None:
        free = [
            a
            for a in self.agents.values()
            if queue in a.queues and a.on_rota and not a.busy and a.username not in besides
        ]
        if not free:
            return None
        agent = self.rng.choice(free)
        agent.busy = True
        return agent

    async def take(
        self, queue: str, give_up: datetime, besides: Collection[str] = ()
    ) -> Agent | None:
        """The first agent of ``queue`` free before ``give_up`` (the caller's patience)."""
        while True:
            agent = self.free_agent(queue, besides)
            if agent is not None or datetime.now(UTC) >= give_up:
                return agent
            await asyncio.sleep(0.05)

    def release(self, agent: Agent, after: float) -> None:
        """The agent is free for the PBX again ``after`` seconds (their own pause)."""

        async def later() -> None:
            await asyncio.sleep(after)
            async with self._freed:
                agent.busy = False
                self._freed.notify_all()

        self.tasks.append(asyncio.create_task(later()))

    # -- live calls --------------------------------------------------------------------------

    async def arrivals(self, stop_at: datetime, lost_until: datetime | None = None) -> None:
        """Start calls until ``stop_at``; those starting before ``lost_until`` may lose their
        end."""
        while datetime.now(UTC) < stop_at:
            await self.gate.wait()
            lost_ok = lost_until is not None and datetime.now(UTC) < lost_until
            n = next(self._calls)
            task = asyncio.create_task(self.live_call(n, lost_ok))
            self.tasks.append(task)
            if lost_ok:
                self._may_lose.append(task)
            await asyncio.sleep(self.rng.uniform(0.08, 0.3))

    async def finish(self) -> None:
        """Wait for every call (and agent pause) in progress."""
        while self.tasks:
            tasks, self.tasks = self.tasks, []
            await asyncio.gather(*tasks)

    def _kind(self, lost_ok: bool) -> str:
        kinds = ["normal"] * 48 + ["abandon"] * 10 + ["ring_abandon"] * 4 + ["rna"] * 10
        kinds += ["transfer"] * 8 + ["direct"] * 4 + ["hold"] * 6
        if lost_ok:
            kinds += ["lost_queued"] * 10 + ["lost_ringing"] * 10 + ["lost_talking"] * 15
        return self.rng.choice(kinds)

    async def live_call(self, n: int, lost_ok: bool) -> None:
        rng = self.rng
        kind = self._kind(lost_ok)
        rec = self.book.record(CallRecord(f"d{n}", rng.choice(tuple(QUEUES))))
        rec.lost = kind.startswith("lost")
        if rec.lost:
            self.late[rec.call_id] = LATE
        t = utc(datetime.now(UTC))
        if kind == "direct":
            agent = self.free_agent(rec.queue)
            if agent is not None:
                await self.event(rec, "answered", t, agent)
                await self._talk_and_end(rec, agent, t, kind)
                return
        await self.event(rec, "queued", t)
        if kind == "lost_queued":
            return  # the caller hung up; the PBX never said so
        if kind == "abandon":
            t = await until(t + seconds(0.3, 5, rng))
            await self.event(rec, "ended", t)
            return
        t = await until(t + seconds(0.1, 2.5, rng))
        agent = await self.take(rec.queue, t + seconds(1, 5, rng))
        if agent is None:  # nobody free in time: the caller gives up
            rec.lost = False
            await self.event(rec, "ended", utc(datetime.now(UTC)))
            return
        t = utc(max(t, datetime.now(UTC)))
        await self.event(rec, "offered", t, agent)
        t = await until(t + seconds(0.2, 1.0, rng))
        if kind in ("ring_abandon", "lost_ringing"):
            if kind == "ring_abandon":
                await self.event(rec, "ended", t)
            self.release(agent, 0)
            return
        if kind == "rna":
            agent = await self._ring_no_answer(rec, agent, t)
            if agent is None:
                return
            t = utc(datetime.now(UTC))
        await self.event(rec, "answered", t, agent)
        await self._talk_and_end(rec, agent, t, kind)

    async def _ring_no_answer(self, rec: CallRecord, first: Agent, t: datetime) -> Agent | None:
        """Nobody picks up: the offer is withdrawn and the call rings someone else."""
        attributes = {"offer_withdrawn": True}
        await self.event(rec, "queued", t, first, attributes=attributes)
        self.release(first, 0.2)
        agent = await self.take(rec.queue, t + timedelta(seconds=4), besides=(first.username,))
        t = utc(datetime.now(UTC))
        if agent is None:
            await self.event(rec, "ended", t)
            return None
        await self.event(rec, "offered", t, agent)
        await until(t + seconds(0.2, 0.8, self.rng))
        return agent

    async def _talk_and_end(self, rec: CallRecord, agent: Agent, t: datetime, kind: str) -> None:
        rng = self.rng
        if kind == "hold":
            t = await until(t + seconds(0.1, 0.5, rng))
            await self.event(rec, "held", t, agent)
            t = await until(t + seconds(0.1, 0.5, rng))
            await self.event(rec, "resumed", t, agent)
        if kind == "transfer":
            t = await until(t + seconds(0.2, 1.0, rng))
            other = await self.take(rec.queue, t + timedelta(seconds=3), (agent.username,))
            if other is not None:
                t = utc(max(t, datetime.now(UTC)))
                attributes = {"transfer_to": other.extension}
                await self.event(rec, "transferred", t, attributes=attributes)
                self.release(agent, rng.uniform(0, 1.5))
                agent = other
                t = await until(t + timedelta(milliseconds=150))
                await self.event(rec, "answered", t, agent)
        t = await until(t + seconds(0.2, 1.5, rng))
        if kind == "lost_talking":
            self.release(agent, rng.uniform(0, 1.5))
            return  # hung up; the end event was lost
        await self.event(rec, "ended", t)
        self.release(agent, rng.uniform(0, 1.5))
        roll = rng.random()
        if roll < 0.06:
            self.late_wrapups.append((rec.call_id, agent.username))
        elif roll < 0.6:
            await self.wrapup(rec.call_id, agent.username)
        # else: the wrap-up is lost (the agent never sends one)

    # -- the morning's backlog ---------------------------------------------------------------

    async def play_backlog(self, start: datetime, end: datetime, workers: int = 8) -> None:
        """The calls of ``start``..``end`` (hours ago), delivered now, each in order."""
        scripts = morning(self, start, end)
        queue: asyncio.Queue[list[Step]] = asyncio.Queue()
        for script in scripts:
            queue.put_nowait(script)

        async def worker() -> None:
            while not queue.empty():
                script = queue.get_nowait()
                for at, kind, agent, fields in script:
                    rec = fields.pop("rec")
                    await self.event(rec, kind, at, agent, **fields)

        await asyncio.gather(*(worker() for _ in range(workers)))


def morning(switch: Switch, start: datetime, end: datetime) -> list[list[Step]]:
    """One script per call from ``start`` to ``end``: a call every 20-80 s, talk 20-400 s,
    with abandons, ring-no-answer, transfers and lost ends."""
    rng = switch.rng
    free_at = {a.username: start for a in switch.agents.values()}
    kinds = ["normal"] * 56 + ["abandon"] * 10 + ["rna"] * 10 + ["transfer"] * 8
    kinds += ["lost_queued"] * 4 + ["lost_ringing"] * 4 + ["lost_talking"] * 8
    scripts: list[list[Step]] = []
    t = start
    while True:
        t += seconds(20, 80, rng)
        if t >= end:
            return scripts
        rec = switch.book.record(CallRecord(f"m{len(scripts) + 1}", rng.choice(tuple(QUEUES))))
        script: list[Step] = []
        scripts.append(script)

        def add(at: datetime, kind: str, agent: Agent | None = None, **fields: Any) -> None:
            script.append((utc(at), kind, agent, {"rec": rec, **fields}))  # noqa: B023

        kind = rng.choice(kinds)
        rec.lost = kind.startswith("lost")
        add(t, "queued")
        ready = [
            a for a in switch.agents.values() if rec.queue in a.queues and free_at[a.username] <= t
        ]
        if kind == "lost_queued":
            continue
        if kind == "abandon" or len(ready) < 2:
            rec.lost = False
            add(t + seconds(1, 40, rng), "ended")
            continue
        agent, other = rng.sample(ready, 2)
        offer = t + seconds(0.2, 5, rng)
        add(offer, "offered", agent)
        answer = offer + seconds(0.3, 3, rng)
        if kind == "rna":
            add(answer, "queued", agent, attributes={"offer_withdrawn": True})
            agent = other
            add(answer, "offered", agent)
            answer += seconds(0.5, 4, rng)
        free_at[agent.username] = answer
        if kind == "lost_ringing":
            continue  # rang, then nothing more was heard
        add(answer, "answered", agent)
        hang_up = answer + seconds(20, 400, rng)
        if kind == "transfer":
            moved = answer + seconds(10, 60, rng)
            add(moved, "transferred", attributes={"transfer_to": other.extension})
            add(moved + timedelta(seconds=2), "answered", other)
            free_at[agent.username] = moved
            agent = other
            hang_up = max(hang_up, moved + timedelta(seconds=30))
        free_at[agent.username] = hang_up
        if kind != "lost_talking":
            add(hang_up, "ended")
