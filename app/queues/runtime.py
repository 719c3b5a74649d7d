"""Live queue statistics, rebuilt from the database at start and fed by hub messages.

Hub listeners on channels ``calls`` and ``presence`` fold every message into the process's
``QueueStats`` (with Redis every instance sees every message and holds the same figures). Three
background tasks: the agents' timeouts sweep (``app.queues.timeouts``); the roster (queue
thresholds, who is in which queue) is checked every few seconds and re-read when it changed
(``app.fingerprint``: reading 2,000 users held the event loop for 7-27 ms, and every pop in
flight with it), and presence changes are written to ``agent_presence`` in small batches so
they survive a restart without a database write on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.expiry import ring_out
from app.db import utcnow
from app.queues import repository, timeouts
from app.queues.rebuild import rebuild
from app.queues.service import Roster, load_roster
from app.queues.stats import QueueStats
from app.state import State

log = logging.getLogger(__name__)

ROSTER_REFRESH_S = 5.0
PRESENCE_FLUSH_S = 0.5


class QueuesRuntime:
    """Owns the statistics of this process and the tasks that keep them fed and persisted."""

    def __init__(self, state: State) -> None:
        self.state = state
        settings = state["settings"]
        self.stats = QueueStats(settings.timezone)
        self.roster = Roster()
        self._roster_fingerprint: tuple[str, ...] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Messages that arrive while the rebuild reads the database wait here, then apply:
        # applying a change twice is harmless (views are replaced, credits de-duplicated).
        self._pending: list[tuple[str, dict[str, Any]]] | None = []
        self._stopped = False

    async def start(self) -> None:
        hub = self.state["hub"]
        hub.add_listener("calls", self.on_message)
        hub.add_listener("presence", self.on_message)
        # After a Redis outage messages may have been missed: rebuild from the database.
        hub.on_reconnect(self.resync)
        await self._rebuild()
        self._tasks = [
            asyncio.create_task(self._refresh_roster(), name="queues-roster"),
            asyncio.create_task(self._persist_presence(), name="queues-presence"),
            asyncio.create_task(self._sweep_agents(), name="queues-agent-timeouts"),
        ]

    async def _rebuild(self) -> None:
        factory = self.state["sessionmaker"]
        async with factory() as session:
            await self._load_roster(session)
            stats = await rebuild(session, self.roster, self.state["settings"].timezone)
        # Open screens are not in the database; carry their count over. Pages that were open
        # before a restart get SCREENPOP_AGENT_OFFLINE_S from now to connect again.
        for username, view in self.stats.agents.items():
            if view.connections:
                stats.agent(username).connections = view.connections
            if view.page_seen_at is not None:
                stats.agent(username).page_seen_at = view.page_seen_at
        started = utcnow()
        for view in stats.agents.values():
            if view.page_seen_at is None or view.page_seen_at < started:
                view.page_seen_at = started
        old, self.stats = self.stats, stats
        self.state["services"]["queue_stats"] = stats
        pending, self._pending = self._pending or [], None
        for channel, message in pending:
            self._apply(channel, message)
        # Wake supervisors' websockets waiting on the old object.
        old.changed().set()

    async def resync(self) -> None:
        """Rebuild the statistics from the database (messages may have been missed)."""
        if self._stopped or self._pending is not None:
            return
        await self.flush_presence()
        self._pending = []
        try:
            await self._rebuild()
        finally:
            if self._pending is not None:
                pending, self._pending = self._pending, None
                for channel, message in pending:
                    self._apply(channel, message)
        log.info("queue statistics rebuilt from the database after a hub reconnect")

    async def stop(self) -> None:
        self._stopped = True
        hub = self.state["hub"]
        hub.remove_listener("calls", self.on_message)
        hub.remove_listener("presence", self.on_message)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.flush_presence()

    async def on_message(self, channel: str, message: dict[str, Any]) -> None:
        """Hub listener for ``calls`` and ``presence``."""
        if self._stopped:
            return
        if self._pending is not None:
            self._pending.append((channel, message))
            return
        self._apply(channel, message)

    def _apply(self, channel: str, message: dict[str, Any]) -> None:
        kind = message.get("type")
        try:
            if kind == "call.change":
                self.stats.apply_call_change(message)
            elif kind == "pop.pushed":
                self.stats.apply_pop_pushed(message)
            elif kind in ("agent.connection", "agent.status", "agent.timeout", "agent.pages"):
                self.stats.apply_presence(message)
        except (KeyError, TypeError, ValueError):
            # One malformed message must not stop the statistics for everyone.
            log.exception("queue statistics ignored a malformed message", extra={"kind": kind})

    async def _refresh_roster(self) -> None:
        while True:
            await asyncio.sleep(ROSTER_REFRESH_S)
            try:
                async with self.state["sessionmaker"]() as session:
                    if not await self._load_roster(session):
                        continue
                self.stats.service_levels.update(self.roster.service_levels)
            except Exception:
                log.exception("queue roster refresh failed; keeping the previous one")

    async def _load_roster(self, session: AsyncSession) -> bool:
        """Read the roster unless it is unchanged since the last read; True if read."""
        fingerprint = await repository.ROSTER_FINGERPRINT.read(session)
        if fingerprint is not None and fingerprint == self._roster_fingerprint:
            return False
        self.roster = await load_roster(session)
        self._roster_fingerprint = fingerprint
        return True

    async def _sweep_agents(self) -> None:
        while True:
            await asyncio.sleep(self.state["settings"].sweep_interval_s)
            try:
                await self.sweep_agents()
            except Exception:
                log.exception("agent timeouts sweep failed; will retry")

    async def sweep_agents(self, now: datetime | None = None) -> int:
        """Publish this instance's page heartbeat and every overdue agent state, and withdraw
        the offers that rang out (``app.queues.timeouts``); the number of timeouts published
        and offers withdrawn."""
        moment = now or utcnow()
        hub = self.state["hub"]
        heartbeat = timeouts.pages_message(self.state, moment)
        if heartbeat is not None:
            await hub.publish("presence", heartbeat)
        offline_s = self.state["settings"].agent_offline_s
        due = timeouts.overdue(self.stats, self.roster, offline_s, moment)
        for message in due:
            await hub.publish("presence", message)
        calls = self.state["services"].get("calls")
        rung = timeouts.rung_out(self.stats, self.roster, moment)
        withdrawn = await ring_out(calls, rung, moment) if calls is not None else 0
        return len(due) + withdrawn

    async def _persist_presence(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_FLUSH_S)
            try:
                await self.flush_presence()
            except Exception:
                log.exception("writing agent presence failed; will retry")

    async def flush_presence(self) -> None:
        """Write every presence change not yet written (one statement for the batch).

        A batch the database refuses for its data is written row by row, and a row refused on
        its own is dropped with a warning: one bad value cannot hold back every agent's
        presence. Any other failure (the database away) keeps the rows for the next flush.
        """
        dirty = self.stats.dirty_agents
        if not dirty:
            return
        rows = [
            {"username": v.username, "state": v.state, "since": v.since, "call_id": v.call_id}
            for v in dirty.values()
            if v.since is not None
        ]
        dirty.clear()
        try:
            await self._write_presence(rows)
        except DBAPIError as exc:
            if not refused_for_its_data(exc):
                self._keep(rows)
                raise
            await self._write_one_by_one(rows)
        except Exception:
            self._keep(rows)
            raise

    async def _write_presence(self, rows: list[dict[str, Any]]) -> None:
        async with self.state["sessionmaker"]() as session:
            await repository.upsert_presences(session, rows)
            await session.commit()

    async def _write_one_by_one(self, rows: list[dict[str, Any]]) -> None:
        for n, row in enumerate(rows):
            try:
                await self._write_presence([row])
            except Exception as exc:
                if not (isinstance(exc, DBAPIError) and refused_for_its_data(exc)):
                    self._keep(rows[n:])
                    raise
                log.warning(
                    "presence of agent %.80r dropped: the database refused it (%s)",
                    row["username"],
                    exc.orig,
                )

    def _keep(self, rows: list[dict[str, Any]]) -> None:
        """Put rows back for the next flush, unless something newer was recorded meanwhile."""
        for row in rows:
            username = str(row["username"])
            self.stats.dirty_agents.setdefault(username, self.stats.agents[username])


def refused_for_its_data(exc: DBAPIError) -> bool:
    """True when the database refused the values (SQLSTATE class 22 data exception, 23
    integrity), not the connection: writing the same row again cannot succeed."""
    sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
    return isinstance(exc, DataError | IntegrityError) or sqlstate[:2] in ("22", "23")


async def start(state: State) -> None:
    """Rebuild today's statistics and subscribe to call and presence changes."""
    runtime = QueuesRuntime(state)
    state["services"]["queues_runtime"] = runtime
    await runtime.start()


async def stop(state: State) -> None:
    """Stop what ``start`` started and write the last presence changes."""
    runtime: QueuesRuntime | None = state["services"].pop("queues_runtime", None)
    if runtime is not None:
        await runtime.stop()


def runtime_of(state: State) -> QueuesRuntime:
    """The queues runtime of this app (the router's way in)."""
    runtime: QueuesRuntime = state["services"]["queues_runtime"]
    return runtime
