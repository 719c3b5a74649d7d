"""The calls domain's event path: read -> plan -> write -> publish -> durable -> answer.

``CallService.ingest`` is the one loop every event goes through, whatever sent it (webhooks,
the AMI and ESL connectors, the demo simulator):

1. the store (``app.calls.store``) reads the call's row, has the planner
   (``app.calls.planning``) plan the event on it, and writes call + journal + deliveries +
   audit at once; a duplicate changes nothing, and an event that cannot be applied is
   journaled for replay;
2. what changed is published (``app.calls.publishing``): pops and ``call.state`` to agents,
   ``call.change`` to the statistics and other instances;
3. the answer waits until the store says the write is on disk (``EventStore.durable``).

At a call's first sight the caller is resolved and the pop document built (the customers
domain), so the offer only pushes. When ``pop_budget_ms`` is already spent by the time the
caller is matched, the pop goes out with identity + balance and the rest follows as a
``pop.update``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import logs, tracing
from app.calls.agent_actions import AgentActions
from app.calls.directory import Directory
from app.calls.planning import CallRow, Plan, Planner, journal_record
from app.calls.publishing import Publisher
from app.calls.receipts import ReceiptWriter
from app.calls.store import EventStore, SessionStore
from app.db import utcnow
from app.live.hub import Hub
from app.metrics import Metrics
from app.settings import Settings
from telephony.events import CallEvent


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What the webhook answers: the call, and whether the event was a duplicate."""

    call_id: str
    duplicate: bool
    state: str | None = None
    queue: str | None = None
    applied: bool = True


class CallService:
    """Ingest and the agents' actions; one per process (``state["services"]["calls"]``)."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        hub: Hub,
        metrics: Metrics | None = None,
        store: EventStore | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store: EventStore = store or SessionStore(sessionmaker)
        self.directory = Directory()
        self.planner = Planner(settings, self.directory)
        self.publisher = Publisher(settings, hub, self.directory, self.store, metrics)
        # Agents' ack / seen receipts, written in batches (see app.calls.receipts).
        self.receipts = ReceiptWriter(
            sessionmaker, flush_interval_s=settings.receipt_flush_ms / 1000, metrics=metrics
        )
        self.actions = AgentActions(
            settings,
            sessionmaker,
            hub,
            self.directory,
            self.publisher,
            self.receipts,
            self.planner,
        )

    async def on_call_change(self, channel: str, message: dict[str, Any]) -> None:
        """Hub listener on ``calls``: a newer version of a call (another instance's event)
        makes a row the store kept for it stale."""
        version = message.get("version")
        if message.get("type") == "call.change" and isinstance(version, int):
            self.store.forget_older(str(message.get("call_id")), version)

    async def ingest(
        self, event: CallEvent, *, received_at: datetime | None = None
    ) -> IngestResult:
        """Journal ``event`` and apply it; publish what changed; return once it is on disk.

        Log lines inside carry the call's id; with tracing on, each step is a span
        (``calls.ingest`` > ``calls.write`` > ``calls.plan``, ``calls.publish``,
        ``calls.durable``)."""
        call_id = event.full_call_id
        with (
            logs.bound(call_id=call_id),
            tracing.span("calls.ingest", call_id=call_id, kind=event.kind, source=event.source),
        ):
            return await self._ingest(event, received_at or utcnow())

    async def _ingest(self, event: CallEvent, received: datetime) -> IngestResult:
        started = time.perf_counter()

        async def plan(session: AsyncSession, row: CallRow | None) -> Plan:
            with tracing.span("calls.plan"):
                return await self.planner.plan(
                    session, event, row, received_at=received, started=started
                )

        with tracing.span("calls.write"):
            written = await self.store.write_event(event, journal_record(event, received), plan)
        call_id = event.full_call_id
        if written.duplicate:
            self._count(event.source, "duplicate")
            result = IngestResult(call_id, duplicate=True)
        elif written.applied is None:
            self._count(event.source, "unapplied")
            result = IngestResult(call_id, duplicate=False, applied=False)
        else:
            self._count(event.source, "applied")
            with tracing.span("calls.publish", pushes=len(written.applied.pushes)):
                await self.publisher.publish(written.applied)
            call = written.applied.call
            result = IngestResult(
                call_id, duplicate=False, state=call["state"], queue=call.get("queue")
            )
        # Agents have the pop; the PBX's answer waits for the disk (a duplicate's too: the
        # first copy may be a moment from it yet, its answer lost).
        with tracing.span("calls.durable"):
            await self.store.durable()
        return result

    def _count(self, source: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.events.labels(source=source, result=result).inc()

    async def drain(self) -> None:
        """Wait for background work started so far and write queued receipts (tests, replays)."""
        await self.publisher.drain()
        await self.receipts.flush()

    async def close(self) -> None:
        """Cancel background work (pop completion), write queued receipts, close the store."""
        await self.publisher.close()
        await self.receipts.close()
        await self.store.close()
