"""After the commit: pops and ``call.state`` to agents, ``call.change`` to the ``calls``
channel, and a partial pop completed as a ``pop.update``.

Nothing here writes an event: a message goes out only for what a store has committed. An
event's pops go with its provenance (arrival time and trace, ``app.live.provenance``): the
agent's websocket reports the pop once written to the socket (``pop.pushed``, pop health).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from app.calls import repository as repo
from app.calls.directory import Directory
from app.calls.planning import Applied
from app.calls.pop import change_message, document_from_profile, pop_message
from app.calls.state_machine import AGENT_LIVE_STATES
from app.calls.store import EventStore
from app.customers import service as customers
from app.live.hub import Hub
from app.live.provenance import Provenance
from app.metrics import Metrics
from app.settings import Settings

if TYPE_CHECKING:
    from app.sources.live import LiveSources

log = logging.getLogger(__name__)

CALLS_CHANNEL = "calls"
# How many times a pop update is retried when the pop changed under it.
POP_UPDATE_ATTEMPTS = 3


def agent_channel(username: str) -> str:
    return f"agent:{username}"


class Publisher:
    """Publishes what events changed; completes partial pops in the background."""

    def __init__(
        self,
        settings: Settings,
        hub: Hub,
        directory: Directory,
        store: EventStore,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.directory = directory
        self.store = store
        self.metrics = metrics
        self._tasks: set[asyncio.Task[Any]] = set()
        self._finishing: set[str] = set()
        # Live systems of record (app/sources), when configured: set by the calls runtime.
        self.sources: LiveSources | None = None

    async def publish(self, applied: Applied) -> None:
        call = applied.call
        try:
            if applied.pushes:
                await self._push(applied)
                # Let the agents' websocket senders write the pop before the rest of the
                # messages and the HTTP answer.
                await asyncio.sleep(0)
            for username, note in applied.notes:
                await self.hub.publish(agent_channel(username), note)
            await self.hub.publish(CALLS_CHANNEL, change_of(applied))
        except Exception:
            # Committed state is the truth; screens catch up on reconnect (replay).
            log.exception("publishing call %s failed", call.get("id"))
        doc = call.get("pop") or {}
        customer_id = call.get("customer_id")
        if customer_id is not None and (
            applied.pending or (applied.pushes and doc and not doc.get("complete", True))
        ):
            # Partial: complete it now (or again, if the instance that started it is gone).
            self.finish_later(str(call["id"]), int(customer_id))
        if self.sources is not None and applied.old_state is None:
            # First sight: ask the systems of record; what arrives follows as pop.update.
            from app.sources.follow import follow_call  # httpx & co only when configured

            store = functools.partial(self.store_live, str(call["id"]))
            self.spawn(follow_call(self.sources, self.store.reading, call, store), "live-parts")

    async def _push(self, applied: Applied) -> None:
        """The event's pops, each with the event's arrival and trace."""
        call = applied.call
        provenance = Provenance.of_event(applied.received_at)
        match_kind = (call.get("match") or {}).get("kind") or "none"
        for ref in applied.pushes:
            message = pop_message(call, role=ref.role, settings=self.settings)
            await self.hub.publish(agent_channel(ref.username), message, provenance=provenance)
            if self.metrics is not None:
                self.metrics.pops.labels(match=match_kind).inc()

    # --- pop completion ----------------------------------------------------------------------

    def finish_later(self, call_id: str, customer_id: int) -> None:
        if call_id in self._finishing:
            return
        self._finishing.add(call_id)
        self.spawn(self._finish_pop(call_id, customer_id), f"finish-pop-{call_id}")

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        async def run() -> Any:
            return await coro

        task = asyncio.create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _finish_pop(self, call_id: str, customer_id: int) -> None:
        """Store the full profile as the next pop version; send it to the agents holding it."""
        try:
            async with self.store.reading() as session:
                profile = await customers.assemble_profile(
                    session,
                    customer_id,
                    decline_suppress_days=self.settings.decline_suppress_days,
                )

            def complete(row: Any) -> dict[str, Any] | None:
                doc = row.get("pop") or {}
                if row["customer_id"] != customer_id or doc.get("complete"):
                    return None
                return {**doc, **document_from_profile(profile, complete=True)}

            for _ in range(POP_UPDATE_ATTEMPTS):
                if await self._store_update(call_id, complete):
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("completing the pop of call %s failed", call_id)
        finally:
            self._finishing.discard(call_id)

    async def store_live(self, call_id: str, parts: list[dict[str, Any]]) -> None:
        """Systems-of-record parts onto the call's pop (``app.sources.follow``), then sent."""
        for _ in range(POP_UPDATE_ATTEMPTS):
            if await self._store_update(call_id, lambda row: {**(row["pop"] or {}), "live": parts}):
                return

    async def _store_update(
        self, call_id: str, change: Callable[[Any], dict[str, Any] | None]
    ) -> bool:
        """One try: the pop replaced by ``change(row)`` (None: leave it), then sent to the
        agents holding it; False: the pop changed meanwhile."""
        async with self.store.reading() as session:
            row = await repo.get_call(session, call_id)
        fresh = change(row) if row is not None else None
        if row is None or fresh is None:
            return True
        if not await self.store.replace_pop(call_id, row["pop_version"], fresh):
            return False
        async with self.store.reading() as session:
            # Read again: an offer may have committed since the first read, and its agent
            # must get the update.
            call = await repo.get_call(session, call_id)
            holders = await repo.pop_holders(session, call_id)
            roles = {u: await self.directory.agent(session, u) for u in holders}
        if call is not None:
            # The call's next event (the offer, often) plans on this row, not on the older one
            # (it would conflict, read and plan again).
            self.store.remember(call_id, dict(call))
        if call is None or call["state"] not in AGENT_LIVE_STATES:
            return True
        live = {call["agent"], *(call["offered_to"] or [])}
        for username in holders:
            if username in live:
                ref = roles.get(username)
                message = pop_message(
                    call,
                    role=ref.role if ref else "agent",
                    settings=self.settings,
                    kind="pop.update",
                )
                await self.hub.publish(agent_channel(username), message)
        return True

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def change_of(applied: Applied) -> dict[str, Any]:
    """The ``call.change`` message for what an event changed."""
    return change_message(
        applied.call,
        event_kind=applied.event_kind,
        occurred_at=applied.occurred_at,
        received_at=applied.received_at,
        old_state=applied.old_state,
        withdrawn=applied.withdrawn,
    )
