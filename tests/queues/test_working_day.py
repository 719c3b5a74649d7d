"""A working day that stays true (DESIGN.md, "Over a working day"): several hundred calls
through real servers on one PostgreSQL database, with lost end events, lost wrap-ups, agents'
pages that open, close and come back, and restarts; at the end no call is live, every agent is
in the state the day leaves them in, and every supervisor figure equals the count
``tests/queues/day_book.py`` makes by hand from the events the PBX sent and the journal.

The day, compressed (timeouts of seconds, set through the settings: calls idle for 60 s
expire, agents with no page for 8 s are logged out, sweeps every 0.25 s):

1. **The morning's backlog** (08:00-11:30 local, ~250 calls) is delivered at full speed to
   an instance whose sweeps are an hour apart: its events are hours old, and a sweeper would
   otherwise close a call between two of its own events. Its lost ends stay live (waiting).
2. **Restart.** A new instance rebuilds the figures from the database and its first sweeps
   close the morning's lost ends. Three agents open their page; 15 s of live calls (~5 a
   second), those of the first 5 s sometimes losing their end (delivered 40 s late, so they
   expire ~20 s after it, after the next restart); bob closes his page, carol goes away. The
   PBX pauses (once the calls that may lose their end are played out) with callers waiting
   and agents talking; the figures are checked.
3. **Restart into two instances** sharing Redis, started together: the figures on the
   first one up while the PBX is still paused; then 15 s more calls, the PBX's events (and
   its agents' wrap-ups) alternating between the two once both are up, both sweeping. Then
   the day winds down: the lost ends expire once each, wrap-ups time out (some are posted
   late, some never), agents without a page are logged out.

Every call in progress at a restart keeps going: its events wait behind the paused PBX and
are delivered with the times they happened, well within the idle limit.

The timezone is chosen so that it is about noon locally (a fixed-offset zone), so the day
never crosses midnight whenever the test runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app import migrate
from app.calls.models import Call, CallEventRecord
from app.calls.state_machine import LIVE_STATES
from app.customers.models import Interaction
from app.db import create_engine
from app.queues.service import upsert_queue
from app.users.models import User
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET
from tests.queues.day_book import Book, HandCount, check_queue
from tests.queues.day_pbx import QUEUES, Switch, staff, token
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.server import ServerProcess

pytestmark = pytest.mark.timeout(300)

LEVELS = {name: level for name, (level, _) in QUEUES.items()}
LIVE_S = 15.0
LOST_S = 5.0
ADMIN = {"Authorization": f"Bearer {token('root', 'admin')}"}
# Where the day leaves each agent (the rest, desk phones only, are logged out).
FINAL = {"alice": "available", "carol": "away"}


def noon_zone(now: datetime) -> ZoneInfo:
    """A fixed-offset zone in which it is now between 12:00 and 13:00."""
    offset = 12 - now.astimezone(UTC).hour
    name = "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    return ZoneInfo(name)


@dataclass
class Day:
    url: str
    engine: AsyncEngine
    tz: ZoneInfo
    switch: Switch
    env: dict[str, str]
    servers: list[ServerProcess] = field(default_factory=list)

    @property
    def book(self) -> Book:
        return self.switch.book

    @property
    def today(self) -> date:
        return datetime.now(self.tz).date()

    async def start(self, sweep_interval_s: float = 0.25) -> ServerProcess:
        env = {**self.env, "SCREENPOP_SWEEP_INTERVAL_S": str(sweep_interval_s)}
        server = ServerProcess(env)
        self.servers.append(server)
        await asyncio.to_thread(server.start, 90.0)
        return server

    async def get(self, server: ServerProcess, path: str) -> Any:
        response = await self.switch.http.get(server.url + path, headers=ADMIN)
        assert response.status_code == 200, response.text
        return response.text if "format=csv" in path else response.json()

    async def expiries(self) -> dict[str, datetime]:
        """The journal's ``expired`` entries: one per call at most, ``raw`` null."""
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(
                select(CallEventRecord.call_id, CallEventRecord.occurred_at, CallEventRecord.raw)
                .where(CallEventRecord.kind == "expired")
            )  # fmt: skip
            out: dict[str, datetime] = {}
            for call_id, at, raw in rows:
                assert raw is None and call_id not in out, (call_id, raw)
                out[call_id] = at
        return out

    async def count(self) -> HandCount:
        return HandCount(self.book, await self.expiries(), self.tz, self.today, LEVELS)


async def seed(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        for agent in staff():
            session.add(
                User(username=agent.username, password_hash="!", role="agent",
                     extension=agent.extension, queues=list(agent.queues))
            )  # fmt: skip
        for name, (level, wrap_up) in QUEUES.items():
            await upsert_queue(session, name=name, service_level_s=level, wrap_up_s=wrap_up)
        await session.commit()


@pytest.fixture
async def day(redis_url: str) -> AsyncIterator[Day]:
    url = await create_pg_database()
    await migrate.upgrade_async(url)
    engine = create_engine(url)
    await seed(engine)
    tz = noon_zone(datetime.now(UTC))
    env = {
        "SCREENPOP_DATABASE_URL": url,
        "SCREENPOP_REDIS_URL": redis_url,
        "SCREENPOP_REDIS_PREFIX": f"screenpop-day-{uuid.uuid4().hex[:10]}",
        "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
        "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "SCREENPOP_TIMEZONE": tz.key,
        "SCREENPOP_CALL_MAX_IDLE_S": "60",
        "SCREENPOP_AGENT_OFFLINE_S": "8",
    }
    day = Day(url, engine, tz, Switch(Book(), seed=19), env)
    try:
        yield day
    finally:
        for server in day.servers:
            server.stop()
        await day.switch.http.aclose()
        await engine.dispose()
        await drop_pg_database(url)


class Screen:
    """An agent's page: a websocket that acknowledges every pop and remembers its call."""

    def __init__(self, username: str) -> None:
        self.username = username
        self.pops: set[str] = set()
        self._ws: ClientConnection | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def open(self, server: ServerProcess) -> None:
        self._ws = await connect(f"{server.ws_url}/ws/agent?token={token(self.username)}")
        self._readers.append(asyncio.create_task(self._read(self._ws)))

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") in ("pop", "pop.update"):
                    call_id = message["call"]["id"]
                    self.pops.add(call_id)
                    ack = {"type": "ack", "call_id": call_id, "version": message["version"]}
                    await ws.send(json.dumps(ack))

    async def close(self) -> None:
        """Close the page (a page closed by its server's stop is already closed)."""
        if self._ws is not None:
            await self._ws.close()
        await asyncio.gather(*self._readers)


async def settle(
    check: Callable[[], Awaitable[None]], tries: int = 60, pause: float = 0.25
) -> None:
    """Run ``check`` until it passes (the hub folds what the database holds a moment later,
    sweeps run every quarter second); its last failure is the test's."""
    for attempt in range(tries):
        try:
            await check()
            return
        except AssertionError:
            if attempt == tries - 1:
                raise
            await asyncio.sleep(pause)


async def figures_agree(day: Day, servers: list[ServerProcess]) -> None:
    """``GET /api/queues`` on every server equals the hand count, queue by queue."""
    count = await day.count()
    sums = count.queues()
    for server in servers:
        before = datetime.now(UTC)
        document = await day.get(server, "/api/queues")
        after = datetime.now(UTC)
        assert document["day"] == day.today.isoformat()
        assert sorted(q["name"] for q in document["queues"]) == sorted(sums)
        for queue in document["queues"]:
            name = queue["name"]
            check_queue(name, queue, sums[name], LEVELS[name], (before, after))


async def history_agrees(day: Day, server: ServerProcess) -> None:
    """The day's history by 15 minutes (JSON) and by hour (CSV) equals the hand count (only
    while nobody waits: the service level then does not move with the clock)."""
    count = await day.count()
    now = datetime.now(UTC)
    path = f"/api/queues/history?date={day.today.isoformat()}"
    document = await day.get(server, path + "&interval_min=15")
    assert document == {"date": day.today.isoformat(), "intervals": count.history(15, now)}
    text = await day.get(server, path + "&interval_min=60&format=csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = [
        {k: "" if v is None else str(v) for k, v in row.items()} for row in count.history(60, now)
    ]
    assert rows == expected


async def agents_agree(day: Day, servers: list[ServerProcess]) -> None:
    handled = day.book.handled()
    expected = {u: (FINAL.get(u, "logged_out"), None, handled.get(u, 0)) for u in day.switch.agents}
    for server in servers:
        document = await day.get(server, "/api/queues")
        got = {a["username"]: (a["state"], a["call_id"], a["handled"]) for a in document["agents"]}
        assert got == expected, {u: (got.get(u), w) for u, w in expected.items() if got.get(u) != w}


async def no_call_live(day: Day) -> None:
    expired = await day.expiries()
    assert set(expired) == day.book.lost_calls()
    async with AsyncSession(day.engine) as session:
        states = dict((await session.execute(select(Call.id, Call.state))).all())
        wrapups = dict(
            (await session.execute(
                select(Interaction.agent, func.count()).group_by(Interaction.agent)
            )).all()
        )  # fmt: skip
    assert not [c for c, s in states.items() if s in LIVE_STATES]
    assert states == day.book.final_states()
    assert wrapups == day.book.wrapups


async def first_supervisor_document(server: ServerProcess) -> dict[str, Any]:
    url = f"{server.ws_url}/ws/supervisor?token={token('root', 'admin')}"
    async with connect(url) as ws:
        document: dict[str, Any] = json.loads(await ws.recv())
    return document


async def morning(day: Day) -> None:
    """1. The morning's backlog, then its figures, lost ends still live (and waiting)."""
    first = await day.start(sweep_interval_s=3600)
    day.switch.urls = [first.url]
    eight = datetime.now(day.tz).replace(hour=8, minute=0, second=0, microsecond=0)
    await day.switch.play_backlog(eight, eight + timedelta(hours=3, minutes=30))
    assert len(day.book.calls) > 150 and len(day.book.lost_calls()) > 5
    await settle(lambda: figures_agree(day, [first]))
    await asyncio.to_thread(first.stop)


async def midday(day: Day, screens: dict[str, Screen]) -> None:
    """2. Restart: the rebuilt figures, the morning's lost ends closed by the first sweeps;
    live calls; the PBX pauses with callers waiting and agents talking."""
    switch = day.switch
    second = await day.start()
    switch.urls = [second.url]

    async def morning_closed() -> None:
        assert set(await day.expiries()) == day.book.lost_calls()

    await settle(morning_closed)
    await settle(lambda: figures_agree(day, [second]))
    await history_agrees(day, second)
    for screen in screens.values():
        await screen.open(second)
    t0 = datetime.now(UTC)
    lost_until = t0 + timedelta(seconds=LOST_S)
    calls = asyncio.create_task(
        switch.arrivals(t0 + timedelta(seconds=LIVE_S), lost_until=lost_until)
    )
    await asyncio.sleep(6)
    await screens["bob"].close()  # bob closes his page and keeps taking calls on his phone
    await asyncio.sleep(3)
    # carol takes no more calls and goes away (once screenpop has her off every call: a
    # call that lost its end keeps her ringing or talking until it expires).
    switch.agents["carol"].on_rota = False
    switch.tasks.append(asyncio.create_task(switch.set_status("carol", "away")))
    await calls
    await switch.pause()
    await settle(lambda: figures_agree(day, [second]))
    await asyncio.to_thread(second.stop)


async def afternoon(day: Day, screens: dict[str, Screen]) -> list[ServerProcess]:
    """3. Restart into two instances, started together: the pages come back to the first
    one up, the other joins when it is ready (the calls go on meanwhile). The two."""
    switch = day.switch
    starting = [asyncio.create_task(day.start()) for _ in range(2)]
    done, _ = await asyncio.wait(starting, return_when=asyncio.FIRST_COMPLETED)
    third = done.pop().result()
    switch.urls = [third.url]
    for username in ("alice", "carol"):
        await screens[username].open(third)
    await settle(lambda: figures_agree(day, [third]))
    switch.resume()
    t1 = datetime.now(UTC)
    calls = asyncio.create_task(switch.arrivals(t1 + timedelta(seconds=LIVE_S)))
    fourth = next(s for s in await asyncio.gather(*starting) if s is not third)
    switch.urls.append(fourth.url)
    await calls
    await switch.finish()
    for call_id, username in switch.late_wrapups:  # past the wrap-up time: still taken
        await switch.wrapup(call_id, username)
    return [third, fourth]


async def test_a_working_day(day: Day) -> None:
    screens = {u: Screen(u) for u in ("alice", "bob", "carol")}
    try:
        await morning(day)
        await midday(day, screens)
        both = await afternoon(day, screens)
        # The end of the day: nothing live, agents where they should be, figures by hand.
        await settle(lambda: no_call_live(day), tries=240)
        # Within seconds of the last call: wrap-ups end after their queue's wrap_up_s (after
        # a restart too), pages closed for SCREENPOP_AGENT_OFFLINE_S log agents out.
        await settle(lambda: agents_agree(day, both), tries=120)
        await settle(lambda: figures_agree(day, both))
        for server in both:
            await history_agrees(day, server)
        document = await first_supervisor_document(both[1])
        count = await day.count()
        for queue in document["queues"]:
            name = queue["name"]
            assert not queue["waiting"] and queue["waiting_over_threshold"] == 0
            now = datetime.now(UTC)
            check_queue(name, queue, count.queues()[name], LEVELS[name], (now, now))
        assert len(day.book.calls) > 300
        # Pages get the pops of their own calls only (alice's page was open all day).
        assert screens["alice"].pops
        for username, screen in screens.items():
            reached = {r.full_id for r in day.book.calls.values() if username in r.reached}
            assert screen.pops <= reached, (username, screen.pops - reached)
    finally:
        for screen in screens.values():
            await screen.close()
