"""The demo's call centre: a PBX that offers calls only to agents who are there.

In demo mode (``screenpop serve --demo``) this plays the telephone system. It posts the signed
generic events a PBX would (through ``app.calls.simulator.Simulator.post``), so every call goes
through the real ingest path, and it decides who is offered each call the way an ACD does:

* calls arrive at random (one every ~5 s), wait in their queue, and are offered, to one agent at
  a time, only to an agent with an agent page open who is ``available`` (``choose_agent``):
  people in the call's queue first, then the demo's simulated agents (``sim-amy`` …), the
  longest available first. Agents who are away, offline, ringing, on a call or in wrap-up are
  never offered a call, and nobody has two demo calls at once;
* a simulated agent answers after a short ring, talks, hangs up (now and then after a transfer
  to another simulated agent), wraps up and becomes available again, all by itself, through
  the same API a person's page uses. A person does it all on the demo phone of their agent page
  (``app.calls.demo_phone``): Answer, Decline, Hang up, then their own wrap-up. Nothing is ever
  answered, wrapped up or hung up for a person;
* an offer declined, or not answered within ``SCREENPOP_DEMO_RING_TIMEOUT_S`` (20 s), rings
  out (the offer is withdrawn: ``queued`` naming the agent, ``offer_withdrawn``) and the call
  goes to the next agent; a caller who waits too long hangs up (``abandoned``); a caller whose
  call a person answered hangs up after 10 minutes if the person has not;
* at start, calls a previous run left live are ended: the demo's PBX restarted, its calls are
  gone (every live call of source ``generic``, the simulator's).

``SCREENPOP_DEMO_SPEED`` N divides every simulated duration by N (tests); not the ring timeout.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import random
import secrets
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import select

from app.calls import agent_ws
from app.calls.demo_floor import (
    CALL_PREFIX,
    DISPATCH_S,
    SIM_AGENTS,
    SOURCE,
    DemoTiming,
    Line,
    Span,
    choose_agent,
    sim_wrap_up,
)
from app.calls.models import Call
from app.calls.simulator import Simulator, Timing, load_cast, secret_of
from app.calls.state_machine import LIVE_STATES
from app.errors import Conflict, NotFound, Unavailable
from app.queues import runtime as queues_runtime
from app.queues.models import Queue, QueueNumber
from app.state import State
from app.users import security
from app.users import service as users

log = logging.getLogger(__name__)


class DemoCentre:
    """The demo's PBX (one per process in demo mode: ``state["services"]["demo_centre"]``)."""

    def __init__(self, state: State, *, rng: random.Random | None = None) -> None:
        settings = state["settings"]
        self.state = state
        self.settings = settings
        self.url = settings.public_url.replace("0.0.0.0", "127.0.0.1").rstrip("/")
        self.timing = DemoTiming().faster(settings.demo_speed)
        self.ring_timeout_s = settings.demo_ring_timeout_s
        self.rng = rng or random.Random()
        self.sims: tuple[str, ...] = SIM_AGENTS
        self.lines: dict[str, Line] = {}
        self.waiting: list[Line] = []
        # Agent -> the demo call they are offered or on (one at a time).
        self.busy: dict[str, str] = {}
        self.queues_by_did: dict[str, str] = {}
        self.pbx: Simulator | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for this service to answer, set the floor up, then take calls for ever."""
        await self._wait_until_serving()
        cast = await load_cast(self.settings)
        self.queues_by_did = await self._queues_by_did()
        if self.queues_by_did:
            cast.dids = sorted(self.queues_by_did)
        pbx = self.pbx = Simulator(self.url, secret_of(self.settings), cast, Timing(), rng=self.rng)
        opened: list[str] = []
        try:
            await self._ensure_sim_agents()
            await self._end_leftovers()
            for name in self.sims:
                await agent_ws.open_page(self.state, name)
                opened.append(name)
                self._spawn(self._as_agent(name, "/api/agents/me/status", {"state": "available"}))
            self._spawn(self._dispatch())
            log.info("demo call centre: posting calls to %s", self.url)
            while True:
                self._spawn(self._call())
                await asyncio.sleep(self.rng.expovariate(1 / self.timing.between_calls_s))
        finally:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for name in opened:
                with contextlib.suppress(Exception):
                    await agent_ws.close_page(self.state, name)
            await pbx.close()

    async def _wait_until_serving(self) -> None:
        async with httpx.AsyncClient(timeout=5.0) as probe:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get(self.url + "/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.5)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("demo call centre: a task failed", exc_info=task.exception())

    async def _sleep(self, span: Span) -> None:
        await asyncio.sleep(self.rng.uniform(*span))

    # -- the floor ---------------------------------------------------------------------------

    async def _queues_by_did(self) -> dict[str, str]:
        query = select(QueueNumber.number, Queue.name).join(Queue, Queue.id == QueueNumber.queue_id)
        async with self.state["sessionmaker"]() as session:
            return {str(number): str(name) for number, name in await session.execute(query)}

    async def _ensure_sim_agents(self) -> None:
        """The simulated agents as users of every queue (nobody knows their password)."""
        async with self.state["sessionmaker"]() as session:
            queues = sorted(str(q) for q in await session.scalars(select(Queue.name)))
            for name in self.sims:
                user = await users.get_by_username(session, name)
                if user is None:
                    password = secrets.token_urlsafe(32)
                    await users.upsert_user(
                        session, username=name, role="agent", password=password, queues=queues
                    )
                else:
                    user.role, user.active, user.queues = "agent", True, queues
            await session.commit()

    async def _end_leftovers(self) -> None:
        """End the calls a previous run of the demo left live (their PBX is gone)."""
        query = select(Call.id, Call.caller_raw, Call.caller_withheld, Call.dialed).where(
            Call.state.in_(LIVE_STATES), Call.source == SOURCE
        )
        async with self.state["sessionmaker"]() as session:
            rows = (await session.execute(query)).all()
        for call_id, raw, withheld, dialed in rows:
            provider_id = str(call_id).split(":", 1)[1]
            caller = {"raw": raw or "anonymous", "withheld": bool(withheld)}
            line = Line(provider_id, caller, dialed or "", None)
            await self._send(line, "ended", event_id=f"{provider_id}-ended-at-restart")
        if rows:
            log.info("demo call centre: ended %d calls left live by a previous run", len(rows))

    # -- posting events ----------------------------------------------------------------------

    async def _send(self, line: Line, kind: str, **extra: Any) -> bool:
        """Post one event of ``line`` as its PBX; True when the service took it (202)."""
        assert self.pbx is not None
        body: dict[str, Any] = {
            "event_id": f"{line.provider_id}-{next(line.serial)}",
            "call_id": line.provider_id,
            "kind": kind,
            "caller": line.caller,
            "occurred_at": datetime.now(UTC).isoformat(),
            **extra,
        }
        if line.dialed:
            body["dialed"] = line.dialed
        status = await self.pbx.post(body)
        if status != 202:
            log.warning("demo call centre: %s event of %s answered %s", kind, line.call_id, status)
        return status == 202

    async def _as_agent(self, username: str, path: str, body: dict[str, Any]) -> int:
        """A simulated agent's own request to the API, as their page would make it."""
        assert self.pbx is not None
        token = security.issue_token(
            self.settings.jwt_key(), username=username, role="agent", ttl_s=300
        )
        try:
            response = await self.pbx.client.post(
                self.url + path, json=body, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            log.warning("demo call centre: %s could not reach %s (%s)", username, path, exc)
            return 0
        return response.status_code

    # -- calls -------------------------------------------------------------------------------

    def _new_line(self) -> tuple[Line, dict[str, Any]]:
        assert self.pbx is not None
        caller, attributes = self.pbx.new_caller()
        dialed = self.rng.choice(self.pbx.cast.dids)
        line = Line(
            f"{CALL_PREFIX}{uuid.uuid4().hex}", caller, dialed, self.queues_by_did.get(dialed)
        )
        return line, attributes

    async def _call(self) -> None:
        """One call, from the first ring to its end."""
        line, attributes = self._new_line()
        self.lines[line.call_id] = line
        try:
            await self._send(line, "queued", attributes=attributes)
            await self._sleep(self.timing.ivr_s)
            loop = asyncio.get_running_loop()
            gives_up_at = loop.time() + self.rng.uniform(*self.timing.patience_s)
            while line.state in ("waiting", "ringing"):
                agent = await self._wait_for_agent(line, gives_up_at - loop.time())
                if agent is None:
                    async with line.lock:
                        line.state = "over"
                        await self._send(line, "abandoned")
                    return
                await self._offer(line, agent)
            if line.state == "answered":
                await self._connected(line)
        finally:
            line.state = "over"
            self.lines.pop(line.call_id, None)
            if line in self.waiting:
                self.waiting.remove(line)
            for agent, call_id in list(self.busy.items()):
                if call_id == line.call_id:
                    del self.busy[agent]

    async def _wait_for_agent(self, line: Line, patience_s: float) -> str | None:
        """Queue ``line`` until the dispatcher gives it an agent; None when the caller gives up."""
        line.state, line.agent = "waiting", None
        line.assigned.clear()
        # A call that rang out keeps its place: the queue is in order of arrival.
        bisect.insort(self.waiting, line, key=_arrival)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, patience_s)):
                await line.assigned.wait()
        if line.agent is None:
            self.waiting.remove(line)
        return line.agent

    async def _dispatch(self) -> None:
        while True:
            self.dispatch()
            await asyncio.sleep(DISPATCH_S)

    def dispatch(self) -> None:
        """Give each waiting call, oldest first, the agent ``choose_agent`` names, if any."""
        runtime = queues_runtime.runtime_of(self.state)
        for line in list(self.waiting):
            busy = self.busy.keys() | line.rang
            agent = choose_agent(runtime.stats, runtime.roster, line.queue, self.sims, busy)
            if agent is None:
                continue
            self.waiting.remove(line)
            self.busy[agent] = line.call_id
            line.agent = agent
            line.assigned.set()

    async def _offer(self, line: Line, agent: str) -> None:
        """Ring ``agent``: a simulated one answers; a person answers, declines or lets it ring
        out on their demo phone."""
        line.settled = asyncio.Event()
        async with line.lock:
            line.state = "ringing"
            line.rings_out_at = time.time() + self.ring_timeout_s
            await self._send(line, "offered", agent=agent)
        if agent in self.sims:
            await self._sleep(self.timing.sim_ring_s)
            async with line.lock:
                line.state = "answered"
                await self._send(line, "answered", agent=agent)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.ring_timeout_s):
                await line.settled.wait()
        async with line.lock:
            if line.state == "ringing" and line.agent == agent:
                await self._ring_out(line, agent)

    async def _ring_out(self, line: Line, agent: str) -> bool:
        """Withdraw the offer from ``agent`` (declined or unanswered); the call waits again."""
        posted = await self._send(line, "queued", agent=agent, attributes={"offer_withdrawn": True})
        line.rang.add(agent)
        line.state, line.agent, line.rings_out_at = "waiting", None, None
        # Free only now: their page has seen the offer end before the next one can come.
        self.busy.pop(agent, None)
        line.settled.set()
        return posted

    async def _connected(self, line: Line) -> None:
        """Talk until someone hangs up: the simulated agent, the person, or their caller."""
        agent = line.agent
        assert agent is not None
        if agent in self.sims:
            await self._sim_talk(line, agent)
            return
        # The event answer() left for the hang-up (it may have come already).
        hung_up = line.settled
        if line.state == "answered":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timing.person_talk_max_s):
                    await hung_up.wait()
        async with line.lock:
            if line.state == "answered":
                line.state = "over"
                await self._send(line, "ended")

    async def _sim_talk(self, line: Line, agent: str) -> None:
        talk = self.rng.uniform(*self.timing.talk_s)
        if self.rng.random() < self.timing.transfer_share:
            await asyncio.sleep(talk / 2)
            talk /= 2
            agent = await self._sim_transfer(line, agent)
        await asyncio.sleep(talk)
        async with line.lock:
            line.state = "over"
            await self._send(line, "ended")
        self._spawn(self._sim_wrap_up(agent, line.call_id))

    async def _sim_transfer(self, line: Line, agent: str) -> str:
        """Hand the call to another free simulated agent, if any; who has it now."""
        runtime = queues_runtime.runtime_of(self.state)
        busy = self.busy.keys() | {agent}
        target = choose_agent(
            runtime.stats, runtime.roster, line.queue, self.sims, busy, people=False
        )
        if target is None:
            return agent
        self.busy[target] = line.call_id
        async with line.lock:
            line.agent = target
            await self._send(line, "transferred", agent=agent, attributes={"transfer_to": target})
        self.busy.pop(agent, None)
        self._spawn(self._sim_wrap_up(agent, line.call_id))
        return target

    async def _sim_wrap_up(self, agent: str, call_id: str) -> None:
        """A simulated agent's wrap-up, then available again (a refused wrap-up, e.g. of a
        leg they transferred, is left as it is)."""
        await self._sleep(self.timing.sim_wrap_up_s)
        async with self.state["sessionmaker"]() as session:
            pop = await session.scalar(select(Call.pop).where(Call.id == call_id))
        path = f"/api/calls/{quote(call_id, safe=':')}/wrapup"
        await self._as_agent(agent, path, sim_wrap_up(self.rng, agent, pop))
        await self._as_agent(agent, "/api/agents/me/status", {"state": "available"})

    # -- the demo phone (app.calls.demo_phone) ----------------------------------------------

    def phone(self, username: str) -> dict[str, Any]:
        """What ``username``'s demo phone shows: the call ringing or answered there, or none."""
        line = next(
            (
                line
                for line in self.lines.values()
                if line.agent == username and line.state in ("ringing", "answered")
            ),
            None,
        )
        return {
            "call": None if line is None else _describe(line),
            "ring_timeout_s": self.ring_timeout_s,
        }

    def _line(self, username: str, call_id: str, state: str) -> Line:
        line = self.lines.get(call_id)
        if line is None:
            raise NotFound(f"no demo call {call_id!r} is in progress")
        if line.agent != username or line.state != state:
            where = "ringing on" if state == "ringing" else "connected to"
            raise Conflict(f"call {call_id!r} is not {where} your phone")
        return line

    async def answer(self, username: str, call_id: str) -> dict[str, Any]:
        """The person picked up: the PBX connects the call to them."""
        line = self._line(username, call_id, "ringing")
        async with line.lock:
            self._line(username, call_id, "ringing")  # unchanged while we waited for the lock
            if not await self._send(line, "answered", agent=username):
                raise Unavailable("the demo phone could not post the answer; try again")
            line.state = "answered"
            # Wake the ring; the hang-up will set a fresh event.
            rung, line.settled = line.settled, asyncio.Event()
            rung.set()
        return self.phone(username)

    async def decline(self, username: str, call_id: str) -> dict[str, Any]:
        """The person declined: the offer rings out now and the call goes to the next agent."""
        line = self._line(username, call_id, "ringing")
        async with line.lock:
            self._line(username, call_id, "ringing")
            await self._ring_out(line, username)
        return self.phone(username)

    async def hang_up(self, username: str, call_id: str) -> dict[str, Any]:
        """The person hung up: the call ends (and they are in wrap-up)."""
        line = self._line(username, call_id, "answered")
        async with line.lock:
            self._line(username, call_id, "answered")
            if not await self._send(line, "ended"):
                raise Unavailable("the demo phone could not post the hang-up; try again")
            line.state = "over"
            line.settled.set()
        return self.phone(username)


def _arrival(line: Line) -> float:
    return line.arrived


def _describe(line: Line) -> dict[str, Any]:
    rings_out_in = None
    if line.state == "ringing" and line.rings_out_at is not None:
        rings_out_in = round(max(0.0, line.rings_out_at - time.time()), 1)
    return {
        "id": line.call_id,
        "state": line.state,
        "caller": {"raw": line.caller.get("raw"), "withheld": bool(line.caller.get("withheld"))},
        "queue": line.queue,
        "rings_out_in_s": rings_out_in,
    }


def centre_of(state: State) -> DemoCentre:
    """The running demo call centre; 503 when the demo is not running (yet)."""
    centre: DemoCentre | None = state["services"].get("demo_centre")
    if centre is None or centre.pbx is None:
        raise Unavailable("the demo call centre is starting; try again shortly")
    return centre


async def run_demo(state: State) -> None:
    """Demo mode (``app.calls.runtime``): the call centre against this very service."""
    centre = DemoCentre(state)
    state["services"]["demo_centre"] = centre
    try:
        await centre.run()
    finally:
        state["services"].pop("demo_centre", None)
