"""A call simulator: realistic, signed generic webhook events against a running service.

Each simulated call: ``queued`` (dialed one of the queues' numbers) -> ``offered`` to an agent
(round-robin; sometimes ring-all to two) -> ``answered`` after a ring, or an offer that times
out and goes to the next agent, or an ``abandoned`` caller -> talk -> sometimes a
``transferred`` to another agent -> ``ended``. Callers are mostly real customers' numbers
(read from the database when reachable), some unknown numbers, some withheld (a few of them
with an IVR ``account_ref``).

``screenpop simulate --rate R --duration S --url URL`` runs it from the command line: a load
generator that plays every agent's phone too. Demo mode (``screenpop serve --demo``) runs a
call centre instead (``app.calls.demo_centre``), which posts through ``Simulator.post`` and
never answers for a person.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import select

from app.customers.models import Customer, CustomerPhone
from app.db import create_engine, create_sessionmaker
from app.queues.models import QueueNumber
from app.settings import Settings
from app.users.models import User
from telephony.generic import sign_generic

log = logging.getLogger(__name__)
EVENTS_PATH = "/telephony/generic/events"
FALLBACK_DIDS = ["+448081570001", "+448081570002"]


@dataclass
class Cast:
    """Who takes part: callers' numbers (with their external refs), DIDs and agents."""

    callers: list[tuple[str, str | None]] = field(default_factory=list)
    dids: list[str] = field(default_factory=lambda: list(FALLBACK_DIDS))
    agents: list[tuple[str, str | None]] = field(default_factory=list)  # (username, extension)


@dataclass
class Timing:
    ring_s: tuple[float, float] = (1.0, 4.0)
    talk_s: tuple[float, float] = (5.0, 20.0)
    queue_s: tuple[float, float] = (0.3, 2.0)


async def load_cast(settings: Settings, sample: int = 500) -> Cast:
    """Callers, DIDs and agents from the service's database; an empty cast when unreachable."""
    cast = Cast()
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(CustomerPhone.e164, Customer.external_ref)
                .join(Customer, Customer.id == CustomerPhone.customer_id)
                .where(CustomerPhone.e164.is_not(None))
                .limit(sample)
            )
            cast.callers = [(str(r[0]), r[1]) for r in rows]
            dids = [str(r[0]) for r in await session.execute(select(QueueNumber.number))]
            if dids:
                cast.dids = dids
            agents = await session.execute(
                select(User.username, User.extension).where(
                    User.role == "agent", User.active.is_(True)
                )
            )
            cast.agents = [(str(r[0]), r[1]) for r in agents]
    except Exception as exc:  # the database may be another host's: carry on with fiction
        log.warning("simulator: database not readable (%s); using made-up callers", exc)
    finally:
        await engine.dispose()
    if not cast.agents:
        cast.agents = [("alice", "201"), ("bob", "202")]
    return cast


class Simulator:
    """Posts the events of many overlapping simulated calls."""

    def __init__(
        self,
        url: str,
        secret: str | None,
        cast: Cast,
        timing: Timing,
        *,
        rng: random.Random | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.endpoint = url.rstrip("/") + EVENTS_PATH
        self.secret = secret
        self.cast = cast
        self.timing = timing
        self.rng = rng or random.Random()
        self.client = client or httpx.AsyncClient(timeout=10.0)
        self.results: Counter[str] = Counter()
        self.calls = 0
        self._next_agent = itertools.cycle(range(max(1, len(cast.agents))))

    async def close(self) -> None:
        await self.client.aclose()

    async def post(self, body: dict[str, Any]) -> int:
        """Sign and post one event; returns the HTTP status (0 when unreachable)."""
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {"content-type": "application/json"}
        if self.secret:
            headers["x-screenpop-signature"] = sign_generic(self.secret, raw, int(time.time()))
        try:
            response = await self.client.post(self.endpoint, content=raw, headers=headers)
        except httpx.HTTPError:
            self.results["unreachable"] += 1
            return 0
        self.results[str(response.status_code)] += 1
        return response.status_code

    def _agent_ident(self, index: int) -> str:
        username, extension = self.cast.agents[index % len(self.cast.agents)]
        # PBXs name agents by extension; some providers by username: exercise both.
        return extension if extension and self.rng.random() < 0.5 else username

    def new_caller(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The caller field and attributes for a new call."""
        roll = self.rng.random()
        if roll < 0.08:
            attributes: dict[str, Any] = {}
            known = [ref for _, ref in self.cast.callers if ref]
            if known and self.rng.random() < 0.5:
                attributes["account_ref"] = self.rng.choice(known)
            return {"raw": "anonymous", "withheld": True}, attributes
        if roll < 0.18 or not self.cast.callers:
            # Ofcom's drama range: valid-looking, never a real subscriber.
            return {"raw": f"+447700900{self.rng.randrange(1000):03d}"}, {}
        number, _ = self.rng.choice(self.cast.callers)
        return {"raw": number}, {}

    async def call(self) -> None:
        """One simulated call, start to end."""
        self.calls += 1
        call_id = uuid.uuid4().hex
        serial = itertools.count(1)
        caller, attributes = self.new_caller()
        base = {"call_id": call_id, "caller": caller, "dialed": self.rng.choice(self.cast.dids)}

        async def send(kind: str, **extra: Any) -> None:
            body = {
                **base,
                "event_id": f"{call_id}-{next(serial)}",
                "kind": kind,
                "occurred_at": datetime.now(UTC).isoformat(),
                **extra,
            }
            await self.post(body)

        t = self.timing
        await send("queued", attributes=attributes)
        await asyncio.sleep(self.rng.uniform(*t.queue_s))
        first = next(self._next_agent)
        ring_all = len(self.cast.agents) > 1 and self.rng.random() < 0.25
        offered = [first, first + 1] if ring_all else [first]
        for index in offered:
            await send("offered", agent=self._agent_ident(index))
        await asyncio.sleep(self.rng.uniform(*t.ring_s))
        roll = self.rng.random()
        if roll < 0.1:
            await send("abandoned")
            return
        taker = self.rng.choice(offered)
        if roll < 0.2 and not ring_all and len(self.cast.agents) > 1:
            # Nobody picked up in time: the offer moves on to the next agent.
            await send(
                "queued", agent=self._agent_ident(taker), attributes={"offer_withdrawn": True}
            )
            taker = taker + 1
            await send("offered", agent=self._agent_ident(taker))
            await asyncio.sleep(self.rng.uniform(*t.ring_s))
        await send("answered", agent=self._agent_ident(taker))
        await asyncio.sleep(self.rng.uniform(*t.talk_s))
        if len(self.cast.agents) > 1 and self.rng.random() < 0.1:
            target = self._agent_ident(taker + 1)
            await send(
                "transferred", agent=self._agent_ident(taker), attributes={"transfer_to": target}
            )
            await asyncio.sleep(self.rng.uniform(*t.talk_s) / 2)
        await send("ended")

    async def run(self, rate: float, duration: float | None) -> None:
        """Start calls at ``rate`` per second (Poisson arrivals) for ``duration`` seconds
        (forever when None), then wait for the calls in progress to finish."""
        tasks: set[asyncio.Task[None]] = set()
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while deadline is None or time.monotonic() < deadline:
                task = asyncio.create_task(self.call())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(self.rng.expovariate(rate) if rate > 0 else 1.0)
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def secret_of(settings: Settings) -> str | None:
    return settings.webhook_secret.get_secret_value() if settings.webhook_secret else None


async def run_cli(
    settings: Settings, rate: float, duration: float, url: str, console: Console
) -> None:
    """``screenpop simulate``: post signed events to ``url`` and print what came back."""
    secret = secret_of(settings)
    if secret is None and not settings.dev:
        console.print(
            "[yellow]SCREENPOP_WEBHOOK_SECRET is unset: the service will refuse unsigned "
            "events unless it runs with SCREENPOP_DEV=1[/yellow]"
        )
    cast = await load_cast(settings)
    console.print(
        f"simulating {rate:g} calls/s for {duration:g} s against {url} "
        f"({len(cast.callers)} known callers, {len(cast.agents)} agents, {len(cast.dids)} numbers)"
    )
    sim = Simulator(url, secret, cast, Timing())
    try:
        await sim.run(rate, duration)
    finally:
        await sim.close()
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(sim.results.items()))
    console.print(f"{sim.calls} calls, {sum(sim.results.values())} events ({summary})")
