"""The calls domain's flow: event in -> journal -> state machine -> pop out.

One event is one transaction:

1. the journal row (``call_events``), unique on (source, event_id): a duplicate stops here
   and changes nothing;
2. in the same transaction: the call's row locked (``SELECT … FOR UPDATE`` on PostgreSQL) or
   inserted, the pure state machine applied, a versioned update written, and the pop
   deliveries (and profile-view audit rows) recorded. If any of that fails, the transaction
   is rolled back and the journal row written again on its own (same id) with
   ``applied = false``; ``replay_journal`` (run at start-up) applies it later: a valid event
   is never lost;
3. commit, THEN publish: pops and ``call.state`` to ``agent:{username}``, ``call.change`` and
   ``pop.pushed`` to ``calls``.

At a call's first sight the caller is resolved and the pop document built (the customers
domain), so the offer only pushes. When ``pop_budget_ms`` is already spent by the time the
caller is matched, the pop goes out with identity + balance and the rest follows as a
``pop.update`` once assembled (after the commit, on its own connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.calls import one_trip
from app.calls import repository as repo
from app.calls.call_rows import CallRows
from app.calls.directory import AgentRef, Directory, QueueRef
from app.calls.group_commit import GroupCommit
from app.calls.pop import (
    caller_of,
    customer_name,
    document_from_profile,
    empty_document,
    pop_message,
    state_message,
    value_tier,
)
from app.calls.receipts import ReceiptWriter
from app.calls.state_machine import (
    AGENT_LIVE_STATES,
    FINAL_STATES,
    CallFacts,
    Outcome,
    Step,
    apply,
)
from app.customers import service as customers
from app.db import utcnow
from app.errors import Conflict, Forbidden, NotFound, Overloaded
from app.hot_pool import HOT_CONNECTION_ERRORS, HotPool, PoolExhausted
from app.raw_statements import hot_connection, use_hot_connection
from app.settings import Settings
from app.users.service import Principal
from telephony.events import ACCOUNT_REF, TRANSFER_TO, CallerId, CallEvent

log = logging.getLogger(__name__)

CALLS_CHANNEL = "calls"
# Sessions kept for the hot path's look-ups between events (at most this many).
MAX_IDLE_SESSIONS = 32
# Optimistic writes (read, plan, write if unchanged) before an event takes the row lock.
OPTIMISTIC_ATTEMPTS = 3
# How many times a pop update is retried when the pop changed under it.
POP_UPDATE_ATTEMPTS = 3


def agent_channel(username: str) -> str:
    return f"agent:{username}"


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What the webhook answers: the call, and whether the event was a duplicate."""

    call_id: str
    duplicate: bool
    state: str | None = None
    queue: str | None = None
    applied: bool = True


@dataclass(slots=True)
class _Applied:
    """What one applied event changed, kept until the commit succeeded and it is published."""

    call: dict[str, Any]
    old_state: str | None
    event_kind: str
    occurred_at: datetime
    received_at: datetime
    withdrawn: tuple[str, ...]
    pushes: list[AgentRef] = field(default_factory=list)
    notes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    pending: bool = False  # the pop is partial: assemble the rest after the commit
    # Received -> push recorded, as stored in ``pop_deliveries.latency_ms``: ``pop.pushed``
    # carries the same number (queue statistics rebuilt after a restart read the row).
    latency_ms: float | None = None


@dataclass(slots=True)
class _Plan:
    """One event's writes, computed before any is made (``CallService._plan``)."""

    applied: _Applied
    call_id: str
    new: bool  # insert the call (else a versioned update from ``version``)
    version: int
    values: dict[str, Any]  # the call's columns to insert, or to set
    pushes: list[dict[str, Any]]  # pop_deliveries rows
    views: list[dict[str, Any]]  # profile_views (audit) rows


def facts_of(row: Mapping[str, Any] | None) -> CallFacts:
    """The state machine's view of a call row (a fresh call for None)."""
    if row is None:
        return CallFacts()
    return CallFacts(
        state=row["state"],
        agent=row["agent"],
        offered_to=tuple(row["offered_to"] or ()),
        queued_at=row["queued_at"],
        answered_at=row["answered_at"],
        ended_at=row["ended_at"],
        last_event_at=row["last_event_at"],
    )


def facts_values(facts: CallFacts) -> dict[str, Any]:
    return {
        "state": facts.state,
        "agent": facts.agent,
        "offered_to": list(facts.offered_to),
        "queued_at": facts.queued_at,
        "answered_at": facts.answered_at,
        "ended_at": facts.ended_at,
        "last_event_at": facts.last_event_at,
    }


def pop_targets(mode: str, before: CallFacts, outcome: Outcome) -> list[str]:
    """Agents who must get the pop now, by the queue's pop mode (offer, answer, off)."""
    after = outcome.facts
    if mode == "off" or after.state not in AGENT_LIVE_STATES:
        return []
    targets: list[str] = []
    if mode == "offer":
        targets.extend(outcome.offered)
        if outcome.answered_by and outcome.answered_by not in before.offered_to:
            # Answered without an offer we saw (out of order, or a provider that never
            # offers): the agent has no pop yet.
            targets.append(outcome.answered_by)
    elif outcome.answered_by:
        targets.append(outcome.answered_by)
    return list(dict.fromkeys(targets))


def _withdraw_reason(outcome: Outcome, username: str) -> str:
    after = outcome.facts
    if outcome.transferred_from == username or (
        outcome.transferred_to and after.state in AGENT_LIVE_STATES
    ):
        return "transferred"
    if after.state in FINAL_STATES:
        return str(after.state)
    if after.agent:
        return "answered_elsewhere"
    return "offer_withdrawn"


def _event_record(event: CallEvent, received_at: datetime) -> dict[str, Any]:
    return {
        "call_id": event.full_call_id,
        "source": event.source,
        "event_id": event.event_id[:200],
        "kind": event.kind,
        "occurred_at": event.occurred_at,
        "received_at": received_at,
        # Serialised once by pydantic-core; the JSON column's serialiser (orjson) embeds it.
        "event": orjson.Fragment(event.model_dump_json(exclude={"raw"})),
        "raw": event.raw,
        "applied": True,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def account_ref_of(event: CallEvent) -> str | None:
    value = event.attributes.get(ACCOUNT_REF)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def local_midnight(settings: Settings) -> datetime:
    """Start of today in ``settings.timezone``, as an aware datetime."""
    local = utcnow().astimezone(ZoneInfo(settings.timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def resolve_step(
    directory: Directory, session: AsyncSession, event: CallEvent
) -> tuple[Step, dict[str, AgentRef]]:
    """The state machine's input with agents resolved to usernames; and the refs by username."""
    refs: dict[str, AgentRef] = {}
    agent = await directory.agent(session, event.agent)
    if agent is not None:
        refs[agent.username] = agent
    target_ident = event.attributes.get(TRANSFER_TO)
    target = None
    if target_ident not in (None, "") and not isinstance(target_ident, dict | list):
        target = await directory.agent(session, str(target_ident))
    if target is not None:
        refs[target.username] = target
    step = Step(
        kind=event.kind,
        occurred_at=event.occurred_at,
        agent=agent.username if agent else None,
        withdrawn=event.offer_withdrawn,
        transfer_to=target.username if target else None,
    )
    return step, refs


async def queue_of(
    directory: Directory, session: AsyncSession, event: CallEvent
) -> QueueRef | None:
    """The queue an event names, else the one owning the dialed number."""
    if event.queue:
        return await directory.queue(session, event.queue[:64])
    if event.dialed:
        return await directory.queue_for_number(session, event.dialed)
    return None


class _StaleConnection(Exception):
    """The event's first statement found its hot connection dead: nothing was written."""


class CallService:
    """Ingest, replay, pop delivery and wrap-up; one per process (``state["services"]``)."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        hub: Any,
        metrics: Any | None = None,
        hot_pool: HotPool | None = None,
        group_commit: GroupCommit | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        # PostgreSQL: plain asyncpg connections for the event path (``app.hot_pool``).
        self.hot_pool = hot_pool
        # The hot pool commits asynchronously: events wait here before they are answered.
        self.group_commit = group_commit
        self._idle_sessions: list[AsyncSession] = []
        self.hub = hub
        self.metrics = metrics
        self.directory = Directory()
        # The row each call's last event wrote here, so its next event skips the read.
        self.rows = CallRows()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._finishing: set[str] = set()
        # Agents' ack / seen receipts, written in batches (see app.calls.receipts).
        self.receipts = ReceiptWriter(
            sessionmaker, flush_interval_s=settings.receipt_flush_ms / 1000, metrics=metrics
        )

    async def on_call_change(self, channel: str, message: dict[str, Any]) -> None:
        """Hub listener on ``calls``: a newer version of a call (another instance's event)
        makes the row kept here for it stale."""
        version = message.get("version")
        if message.get("type") == "call.change" and isinstance(version, int):
            self.rows.changed(str(message.get("call_id")), version)

    # --- background tasks ------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        async def run() -> Any:
            return await coro

        task = asyncio.create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Cancel background work (pop completion) and write queued receipts, at shutdown."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.receipts.close()
        if self.group_commit is not None:
            await self.group_commit.close()
        while self._idle_sessions:
            await self._idle_sessions.pop().close()

    async def drain(self) -> None:
        """Wait for background work started so far and write queued receipts (tests, replays)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.receipts.flush()

    # --- ingest ------------------------------------------------------------------------------

    async def ingest(
        self, event: CallEvent, *, received_at: datetime | None = None
    ) -> IngestResult:
        """Journal ``event`` and apply it; publish what changed after the commit."""
        started = time.perf_counter()
        received_at = received_at or utcnow()
        call_id = event.full_call_id
        record = _event_record(event, received_at)
        if self.hot_pool is not None:
            duplicate, applied = await self._transact_hot(event, record, received_at, started)
        else:
            duplicate, applied = await self._transact(event, record, received_at, started)
        if duplicate:
            self._count(event.source, "duplicate")
            result = IngestResult(call_id, duplicate=True)
        elif applied is None:
            self._count(event.source, "unapplied")
            result = IngestResult(call_id, duplicate=False, applied=False)
        else:
            self._count(event.source, "applied")
            await self._publish(applied, started)
            result = IngestResult(
                call_id,
                duplicate=False,
                state=applied.call["state"],
                queue=applied.call.get("queue"),
            )
        # Agents have the pop; with group commit the PBX's answer waits for the disk (a
        # duplicate's too: the first copy may be a moment from it yet, its answer lost).
        if self.group_commit is not None:
            await self.group_commit.wait()
        return result

    async def _transact(
        self, event: CallEvent, record: dict[str, Any], received_at: datetime, started: float
    ) -> tuple[bool, _Applied | None]:
        """One event's transaction on a session: (duplicate, what changed or None if the apply
        failed and the event was journaled for replay)."""
        async with self.sessionmaker() as session:
            # One round trip on PostgreSQL: the journal row in, the call's row locked.
            journal_id, row = await repo.journal_and_lock(session, record, event.full_call_id)
            if journal_id is None:
                await session.rollback()
                return True, None
            try:
                applied = await self._apply(
                    session, event, received_at, started, locked=True, row=row
                )
                await session.commit()
                return False, applied
            except Exception:
                self._log_unapplied(event)
                await session.rollback()
                # Journal first: the row written again alone, with the id it had.
                await repo.insert_journal(session, {**record, "id": journal_id, "applied": False})
                await session.commit()
                return False, None

    async def _transact_hot(
        self, event: CallEvent, record: dict[str, Any], received_at: datetime, started: float
    ) -> tuple[bool, _Applied | None]:
        """``_transact`` on a plain asyncpg connection from the hot pool (PostgreSQL), in two
        statements: read the call, plan, write everything at once (``app.calls.one_trip``).

        No BEGIN/COMMIT, and checkout skips SQLAlchemy's pool and session. When another event
        for the same call wrote between the read and the write, read and plan again; after
        ``OPTIMISTIC_ATTEMPTS`` the event takes the row lock instead (``_transact_locked``).
        The row the call's previous event wrote in this process stands in for the read when
        it is kept (``app.calls.call_rows``): one statement per event. A session still comes
        along for what is not raw (directory and account look-ups, a queue created on first
        use), on its own connection, committed at the end. A connection found dead at the
        first statement (database restarted) expires the pool's connections and the event is
        tried once more.
        """
        assert self.hot_pool is not None
        call_id = event.full_call_id
        for attempt in (1, 2):
            try:
                async with self._session() as session:
                    kept = self.rows.take(call_id) if attempt == 1 else None
                    if kept is not None:
                        found: tuple[bool, repo.CallRow | None] = (False, kept)
                    else:
                        try:
                            found = await one_trip.read(
                                session, call_id, record["source"], record["event_id"]
                            )
                        except HOT_CONNECTION_ERRORS as exc:
                            if attempt == 2:
                                raise
                            raise _StaleConnection from exc  # nothing was written
                    result = await self._optimistic(
                        session, event, record, received_at, started, found, unread=kept is not None
                    )
                    if result is None:
                        result = await self._transact_locked(
                            session, event, record, received_at, started
                        )
                    return result
            except _StaleConnection:
                # The database likely restarted: every pooled connection is gone, not just
                # this one; the pool opens new ones.
                self.hot_pool.expire()
        raise AssertionError("unreachable")

    async def _optimistic(
        self,
        session: AsyncSession,
        event: CallEvent,
        record: dict[str, Any],
        received_at: datetime,
        started: float,
        found: tuple[bool, repo.CallRow | None],
        *,
        unread: bool = False,
    ) -> tuple[bool, _Applied | None] | None:
        """Plan on the row as read (``unread``: as this process last wrote it) and write it if
        nobody changed it; None: kept conflicting."""
        for attempt in range(OPTIMISTIC_ATTEMPTS):
            duplicate, row = found
            if duplicate:
                return True, None
            try:
                plan = await self._plan(session, event, received_at, started, row)
                written = await one_trip.write(
                    session,
                    record,
                    new=plan.new,
                    version=plan.version,
                    values=plan.values,
                    pushes=plan.pushes,
                    views=plan.views,
                )
            except HOT_CONNECTION_ERRORS as exc:
                if unread and attempt == 0:
                    # The event's first statement: a connection the database dropped is found
                    # here. Read and try again (if this write did land after all, the read
                    # says duplicate and the agents get the pop from the replay on reconnect).
                    raise _StaleConnection from exc
                raise
            except PoolTimeout:
                raise
            except Exception:
                # One statement: nothing of it stays. Journal first: keep the event for replay.
                self._log_unapplied(event)
                await repo.insert_journal(session, {**record, "applied": False})
                return False, None
            if written is not None:
                if written["state"] not in FINAL_STATES:
                    self.rows.put(event.full_call_id, written)
                return False, plan.applied
            if attempt + 1 < OPTIMISTIC_ATTEMPTS:
                found = await one_trip.read(
                    session, event.full_call_id, record["source"], record["event_id"]
                )
            if self.metrics is not None and not found[0]:
                # Another event got in first (a copy of this one is a duplicate, not that).
                self.metrics.write_conflicts.inc()
        return None

    async def _transact_locked(
        self,
        session: AsyncSession,
        event: CallEvent,
        record: dict[str, Any],
        received_at: datetime,
        started: float,
    ) -> tuple[bool, _Applied | None]:
        """One event in a transaction on the hot connection, serialised on the call's row lock."""
        tx = hot_connection(session).transaction()
        await tx.start()
        try:
            journal_id, row = await repo.journal_and_lock(session, record, event.full_call_id)
        except BaseException:
            await tx.rollback()
            raise
        if journal_id is None:
            await tx.rollback()
            return True, None
        try:
            applied = await self._apply(session, event, received_at, started, locked=True, row=row)
            await tx.commit()
            return False, applied
        except PoolTimeout:
            # Overloaded (a look-up found no session connection free): nothing stays
            # written; the provider retries the 503.
            await tx.rollback()
            raise
        except Exception:
            self._log_unapplied(event)
            await tx.rollback()
            # Journal first (autocommit: one statement), with the id it had.
            await repo.insert_journal(session, {**record, "id": journal_id, "applied": False})
            return False, None

    async def _hot_connection(self, pool: HotPool) -> Any:
        try:
            return await pool.acquire()
        except PoolExhausted as exc:
            raise Overloaded(
                "the server is overloaded (no database connection free); retry shortly"
            ) from exc

    @staticmethod
    def _log_unapplied(event: CallEvent) -> None:
        # No SAVEPOINT per event (two round trips each): on failure the whole transaction is
        # rolled back and the journal row written again alone, with the id it had, so the
        # journal's arrival order is unchanged; start-up replay applies it.
        log.exception(
            "applying %s event %s failed; journaled for replay",
            event.full_call_id,
            event.event_id,
        )

    def _count(self, source: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.events.labels(source=source, result=result).inc()

    async def _apply(
        self,
        session: AsyncSession,
        event: CallEvent,
        received_at: datetime,
        started: float,
        *,
        locked: bool = False,
        row: repo.CallRow | None = None,
    ) -> _Applied:
        """Apply ``event`` inside the session's transaction: plan it, then write it. With
        ``locked`` the caller already locked the call (``row``, None for a call not seen yet)."""
        if not locked:
            row = await repo.lock_call(session, event.full_call_id)
        plan = await self._plan(session, event, received_at, started, row)
        if plan.new:
            if not await repo.insert_call(session, plan.values):
                # Another event for this call inserted it a moment ago: apply on top of it.
                return await self._apply(session, event, received_at, started)
        elif not await repo.update_call(session, plan.call_id, plan.version, plan.values):
            raise RuntimeError(f"call {plan.call_id} changed under its lock")
        if plan.pushes:
            await repo.record_pushes(session, plan.pushes)
        if plan.views:
            await customers.insert_profile_views(session, plan.views)
        return plan.applied

    async def _plan(
        self,
        session: AsyncSession,
        event: CallEvent,
        received_at: datetime,
        started: float,
        row: repo.CallRow | None,
    ) -> _Plan:
        """What ``event`` changes, given the call's ``row`` (None: not seen yet); reads only
        (directory, first-sight match and profile), writes nothing."""
        call_id = event.full_call_id
        step, refs = await resolve_step(self.directory, session, event)
        before = facts_of(row)
        outcome = apply(before, step)
        after = outcome.facts
        values = facts_values(after)
        pending = False

        queue: QueueRef | None = None
        if row is None or row["queue"] is None:
            queue = await queue_of(self.directory, session, event)
            if queue is not None:
                values["queue"] = queue.name
        else:
            queue = await self.directory.queue(session, row["queue"])

        # An empty caller (a provider's agent leg, say) is not an answer: a later event's
        # number replaces it. "anonymous" and the like are an answer (withheld).
        new_caller = row is not None and not row["caller_raw"] and bool(event.caller.raw)
        if row is None or new_caller:
            values.update(
                caller_raw=event.caller.raw[:128],
                caller_e164=event.caller.e164,
                caller_withheld=event.caller.withheld,
            )
        if event.caller_name and (row is None or not row["caller_name"]):
            values["caller_name"] = event.caller_name[:200]
        if event.dialed and (row is None or not row["dialed"]):
            values["dialed"] = event.dialed[:64]

        # Resolve at first sight; again when the caller's number or an IVR account number
        # arrives later and the first answer was not a single customer.
        account_ref = account_ref_of(event)
        old_match = (row["match"] if row else None) or {}
        resolve = row is None or (
            old_match.get("kind") != "single"
            and (new_caller or (account_ref and account_ref != old_match.get("account_ref")))
        )
        if resolve and not (row is not None and after.state in FINAL_STATES):
            caller = (
                event.caller
                if row is None or new_caller
                else CallerId(
                    raw=row["caller_raw"],
                    e164=row["caller_e164"],
                    withheld=row["caller_withheld"],
                    valid=row["caller_e164"] is not None,
                )
            )
            match, doc, pending = await self._first_sight(session, caller, account_ref, started)
            values.update(
                match=match.as_dict(),
                customer_id=match.customer_id,
                pop=doc,
                pop_version=(row["pop_version"] if row else 0) + 1,
            )

        if outcome.transferred_to and after.state in AGENT_LIVE_STATES:
            if row is not None:
                one_trip.with_pop(row)
            doc = dict(
                values.get("pop") or (row["pop"] if row else None) or empty_document(complete=True)
            )
            doc["transfer"] = {
                "from": outcome.transferred_from,
                "to": outcome.transferred_to,
                "at": event.occurred_at.isoformat(),
                # Notes so far, when the transferring side sends them (attributes.notes).
                "notes": str(event.attributes.get("notes") or "")[:2000] or None,
            }
            values["pop"] = doc
            values["pop_version"] = (
                int(values.get("pop_version") or (row["pop_version"] if row else 0)) + 1
            )

        if row is None:
            values.update(
                id=call_id,
                source=event.source,
                first_seen_at=received_at,
                version=1,
            )
            values.setdefault("match", {"kind": "none", "candidates": []})
            values.setdefault("pop_version", 0)
            values.setdefault("offered_to", [])
            call = values
        else:
            values["version"] = row["version"] + 1
            call = {**row, **values}

        applied = _Applied(
            call=call,
            old_state=before.state,
            event_kind=event.kind,
            occurred_at=event.occurred_at,
            received_at=received_at,
            withdrawn=outcome.withdrawn,
            pending=pending,
        )
        mode = queue.pop_mode if queue is not None else "offer"
        for username in pop_targets(mode, before, outcome):
            ref = refs.get(username) or await self.directory.agent(session, username)
            if ref is not None and ref.known:
                applied.pushes.append(ref)
        if applied.pushes:
            one_trip.with_pop(call)  # the pop goes out: decode the stored document now
        pushes, views, applied.latency_ms = self._push_rows(
            call, applied.pushes, received_at, reason="pop"
        )
        applied.notes = self._notes(call_id, before, outcome, {r.username for r in applied.pushes})
        return _Plan(
            applied=applied,
            call_id=call_id,
            new=row is None,
            version=row["version"] if row is not None else 0,
            values=values,
            pushes=pushes,
            views=views,
        )

    async def _first_sight(
        self, session: AsyncSession, caller: CallerId, account_ref: str | None, started: float
    ) -> tuple[customers.Match, dict[str, Any], bool]:
        """Match the caller and build the pop document; True when the rest must follow.

        Everything runs on this transaction's connection (a second connection per event
        could exhaust the pool under load while each event holds one). When the budget is
        already spent once the caller is matched, the document holds identity and balance
        (one query) and the full profile is assembled after the commit, as a ``pop.update``.
        """
        match = await customers.resolve_caller(
            session, caller, account_ref=account_ref, default_region=self.settings.default_region
        )
        if match.customer_id is None:
            return match, empty_document(complete=True), False
        remaining = self.settings.pop_budget_ms / 1000 - (time.perf_counter() - started)
        if remaining > 0:
            profile = await customers.assemble_profile(session, match.customer_id)
            return match, document_from_profile(profile, complete=True), False
        identity = await customers.assemble_identity(session, match.customer_id)
        return match, document_from_profile(identity, complete=False), True

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        """A session for the event path and background work; with a hot pool its raw
        statements run on a hot connection, each committing on its own unless the caller
        begins a transaction on it (no SQLAlchemy pool). What is not raw goes through the
        session's own connection, committed at the end."""
        pool = self.hot_pool
        if pool is None:
            async with self.sessionmaker() as plain:
                yield plain
            return
        conn = await self._hot_connection(pool)
        # A session kept from an earlier event: closing one per event costs a task (its close
        # is shielded from cancellation), and most events never use it.
        session = self._idle_sessions.pop() if self._idle_sessions else self.sessionmaker()
        use_hot_connection(session, conn)
        reusable = False
        try:
            yield session
            if session.in_transaction():
                await session.commit()
            reusable = True
        except (_StaleConnection, *HOT_CONNECTION_ERRORS):
            conn.terminate()  # not back into the pool
            raise
        finally:
            pool.release(conn)
            if reusable and len(self._idle_sessions) < MAX_IDLE_SESSIONS:
                session.expunge_all()
                self._idle_sessions.append(session)
            else:
                await session.close()

    def _push_rows(
        self,
        call: Mapping[str, Any],
        targets: Iterable[AgentRef],
        received_at: datetime,
        *,
        reason: str,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float | None]:
        """Delivery rows (receipts come with acks) and one profile-view audit row per push,
        and the latency stored in them (ms; None when nobody was pushed)."""
        # In username order: the receipts batch locks delivery rows in key order too, so the
        # two never take the same rows' locks in opposite orders (a deadlock).
        targets = sorted(targets, key=lambda ref: ref.username)
        if not targets:
            return [], [], None
        now = utcnow()
        latency_ms = round(max(0.0, (now - received_at).total_seconds() * 1000), 3)
        pushes = [
            {
                "call_id": call["id"],
                "username": ref.username,
                "version": int(call.get("pop_version") or 0),
                "pushed_at": now,
                "latency_ms": latency_ms,
                "delivered_at": None,
                "seen_at": None,
            }
            for ref in targets
        ]
        customer_id = call.get("customer_id")
        views = (
            []
            if customer_id is None
            else customers.profile_view_rows(
                usernames=[ref.username for ref in targets],
                customer_id=int(customer_id),
                call_id=str(call["id"]),
                reason=reason,
                viewed_at=now,
            )
        )
        return pushes, views, latency_ms

    async def _record_pushes(
        self,
        session: AsyncSession,
        call: Mapping[str, Any],
        targets: Iterable[AgentRef],
        received_at: datetime,
        *,
        reason: str,
    ) -> float | None:
        """``_push_rows`` written in the session's transaction; returns the latency."""
        pushes, views, latency_ms = self._push_rows(call, targets, received_at, reason=reason)
        if pushes:
            await repo.record_pushes(session, pushes)
        if views:
            await customers.insert_profile_views(session, views)
        return latency_ms

    def _notes(
        self, call_id: str, before: CallFacts, outcome: Outcome, pushed: set[str]
    ) -> list[tuple[str, dict[str, Any]]]:
        """``call.state`` messages: to agents who lose the call, and to those who keep it."""
        after = outcome.facts
        state = str(after.state)
        notes = [
            (u, state_message(call_id, state, withdrawn=True, reason=_withdraw_reason(outcome, u)))
            for u in outcome.withdrawn
            if u not in pushed
        ]
        if after.state != before.state or outcome.transferred_to:
            keepers = [u for u in (after.agent, *after.offered_to) if u]
            for u in dict.fromkeys(keepers):
                if u not in pushed and u not in outcome.withdrawn:
                    notes.append((u, state_message(call_id, state)))
        return notes

    # --- publishing ------------------------------------------------------------------------

    async def _publish(self, applied: _Applied, started: float) -> None:
        call = applied.call
        try:
            for ref in applied.pushes:
                message = pop_message(call, role=ref.role, settings=self.settings)
                await self.hub.publish(agent_channel(ref.username), message)
            pushed_ms = (time.perf_counter() - started) * 1000
            if applied.pushes:
                # Let the agents' websocket senders write the pop before the rest of the
                # messages and the HTTP answer.
                await asyncio.sleep(0)
            for username, note in applied.notes:
                await self.hub.publish(agent_channel(username), note)
            await self.hub.publish(CALLS_CHANNEL, self._change_message(applied))
            match_kind = (call.get("match") or {}).get("kind")
            for ref in applied.pushes:
                if self.metrics is not None:
                    self.metrics.pops.labels(match=match_kind or "none").inc()
                    self.metrics.pop_latency.observe(pushed_ms / 1000)
                await self.hub.publish(
                    CALLS_CHANNEL,
                    {
                        "type": "pop.pushed",
                        "call_id": call["id"],
                        "agent": ref.username,
                        "queue": call.get("queue"),
                        "match_kind": match_kind,
                        "latency_ms": (
                            applied.latency_ms
                            if applied.latency_ms is not None
                            else round(pushed_ms, 3)
                        ),
                    },
                )
        except Exception:
            # Committed state is the truth; screens catch up on reconnect (replay).
            log.exception("publishing call %s failed", call.get("id"))
        doc = call.get("pop") or {}
        customer_id = call.get("customer_id")
        if customer_id is not None and (
            applied.pending or (applied.pushes and doc and not doc.get("complete", True))
        ):
            # Partial: complete it now (or again, if the instance that started it is gone).
            self._finish_later(str(call["id"]), int(customer_id))

    def _change_message(self, applied: _Applied) -> dict[str, Any]:
        call = applied.call
        return {
            "type": "call.change",
            "call_id": call["id"],
            "version": call["version"],
            "event_kind": applied.event_kind,
            "occurred_at": applied.occurred_at.isoformat(),
            "received_at": applied.received_at.isoformat(),
            "old_state": applied.old_state,
            "state": call["state"],
            "queue": call.get("queue"),
            "agent": call.get("agent"),
            "offered_to": list(call.get("offered_to") or []),
            "withdrawn_from": list(applied.withdrawn),
            "caller": caller_of(call),
            "customer_id": call.get("customer_id"),
            "customer_name": customer_name(call),
            "value_tier": value_tier(call),
            "match_kind": (call.get("match") or {}).get("kind"),
            "queued_at": _iso(call.get("queued_at")),
            "answered_at": _iso(call.get("answered_at")),
            "ended_at": _iso(call.get("ended_at")),
        }

    # --- pop completion ----------------------------------------------------------------------

    def _finish_later(self, call_id: str, customer_id: int) -> None:
        if call_id in self._finishing:
            return
        self._finishing.add(call_id)
        self._spawn(self._finish_pop(call_id, customer_id), f"finish-pop-{call_id}")

    async def _finish_pop(self, call_id: str, customer_id: int) -> None:
        """Store the full profile as the next pop version; send it to the agents holding it."""
        try:
            async with self._session() as session:
                profile = await customers.assemble_profile(session, customer_id)
            for _ in range(POP_UPDATE_ATTEMPTS):
                # On PostgreSQL: raw statements on a hot connection, each its own commit (the
                # update is the only write); an overloaded server must not pay a session's
                # worth of CPU per late pop, or late pops make it later still.
                async with self._session() as session:
                    row = await repo.get_call(session, call_id)
                    doc = (row or {}).get("pop") or {}
                    if row is None or row["customer_id"] != customer_id or doc.get("complete"):
                        return
                    fresh = {**doc, **document_from_profile(profile, complete=True)}
                    if not await repo.update_pop(
                        session, call_id, row["pop_version"], {"pop": fresh}
                    ):
                        await session.rollback()
                        continue
                    # Read again: an offer may have committed since the first read, and its
                    # agent must get the update (our update now holds the row).
                    call = await repo.get_call(session, call_id)
                    holders = await repo.pop_holders(session, call_id)
                    roles = {u: await self.directory.agent(session, u) for u in holders}
                    await session.commit()
                if call is None or call["state"] not in AGENT_LIVE_STATES:
                    return
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
                return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("completing the pop of call %s failed", call_id)
        finally:
            self._finishing.discard(call_id)

    # --- agents' screens ---------------------------------------------------------------------

    async def live_pops(self, principal: Principal) -> list[dict[str, Any]]:
        """Every pop still live for this agent, as ``pop`` messages (replay on connect)."""
        async with self.sessionmaker() as session:
            calls = await repo.live_calls_for_agent(session, principal.username)
        messages = []
        for call in calls:
            messages.append(pop_message(call, role=principal.role, settings=self.settings))
            doc = call.get("pop") or {}
            if not doc.get("complete", True) and call.get("customer_id") is not None:
                self._finish_later(call["id"], int(call["customer_id"]))
        return messages

    async def record_receipt(
        self, principal: Principal, call_id: str, version: int | None, *, seen: bool
    ) -> None:
        """An agent's screen confirmed (or showed) a pop: queued, written within
        ``receipt_flush_ms`` (``flush`` / ``drain`` write it at once)."""
        self.receipts.add(call_id, principal.username, version, utcnow(), seen=seen)

    async def choose_match(
        self, call_id: str, customer_id: int, principal: Principal
    ) -> dict[str, Any]:
        """The agent picked the customer: remember it for the number, re-pop as a new version."""
        async with self.sessionmaker() as session:
            row = await repo.lock_call(session, call_id)
            if row is None:
                raise NotFound(f"call {call_id!r} not found")
            involved = principal.username == row["agent"] or principal.username in (
                row["offered_to"] or []
            )
            if not (involved or principal.is_supervisor):
                raise Forbidden(
                    "only an agent on this call or a supervisor may choose its customer"
                )
            profile = await customers.assemble_profile(session, customer_id)
            if row["caller_e164"]:
                await customers.remember_choice(
                    session,
                    e164=row["caller_e164"],
                    customer_id=customer_id,
                    username=principal.username,
                )
            match = dict(row["match"] or {})
            match.update(
                kind="single",
                customer_id=customer_id,
                matched_by="agent_choice",
                chosen_by=principal.username,
            )
            doc = document_from_profile(profile, complete=True)
            if (row["pop"] or {}).get("transfer"):
                doc["transfer"] = row["pop"]["transfer"]
            values = {
                "match": match,
                "customer_id": customer_id,
                "pop": doc,
                "pop_version": row["pop_version"] + 1,
            }
            if not await repo.update_call(session, call_id, row["version"], values):
                raise Conflict(f"call {call_id!r} changed meanwhile; try again")
            call = {**row, **values, "version": row["version"] + 1}
            holders = set(await repo.pop_holders(session, call_id))
            live = (
                {call["agent"], *(call["offered_to"] or [])}
                if call["state"] in AGENT_LIVE_STATES
                else set()
            )
            recipients = sorted((holders & live) | {principal.username})
            refs = [
                ref
                for u in recipients
                if (ref := await self.directory.agent(session, u)) is not None and ref.known
            ]
            await self._record_pushes(session, call, refs, utcnow(), reason="match")
            await session.commit()
        for ref in refs:
            await self.hub.publish(
                agent_channel(ref.username),
                pop_message(call, role=ref.role, settings=self.settings),
            )
        await self.hub.publish(
            CALLS_CHANNEL,
            self._change_message(
                _Applied(
                    call=call,
                    old_state=call["state"],
                    event_kind="match",
                    occurred_at=utcnow(),
                    received_at=utcnow(),
                    withdrawn=(),
                )
            ),
        )
        return pop_message(call, role=principal.role, settings=self.settings)

    # --- wrap-up ---------------------------------------------------------------------------

    async def wrapup(
        self, call_id: str, principal: Principal, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Record the call's outcome as one interaction; a second wrap-up is a conflict."""
        async with self.sessionmaker() as session:
            call = await repo.get_call(session, call_id)
            if call is None:
                raise NotFound(f"call {call_id!r} not found")
            if principal.username != call["agent"] and not principal.is_supervisor:
                raise Forbidden("only the agent on the call or a supervisor may wrap it up")
            if await repo.interaction_for_call(session, call_id) is not None:
                raise Conflict(f"call {call_id!r} is already wrapped up")
            values = {
                "customer_id": call["customer_id"],
                "channel": "phone",
                "call_id": call_id,
                "agent": principal.username,
                "disposition": data.get("disposition"),
                "notes": data.get("notes"),
                "satisfaction": data.get("satisfaction"),
                "offer_outcomes": list(data.get("offers") or []),
                "created_at": utcnow(),
            }
            try:
                interaction_id = await repo.insert_interaction(session, values)
                await session.commit()
            except IntegrityError as exc:
                await session.rollback()
                raise Conflict(f"call {call_id!r} is already wrapped up") from exc
        return {
            "id": interaction_id,
            **{k: v for k, v in values.items() if k != "created_at"},
            "created_at": values["created_at"].isoformat(),
        }

    # --- reading -------------------------------------------------------------------------------

    async def queue_of_call(self, call_id: str) -> str | None:
        async with self.sessionmaker() as session:
            call = await repo.get_call(session, call_id)
        return call["queue"] if call else None

    async def calls_today(self, username: str) -> list[dict[str, Any]]:
        """The agent's calls since local midnight (``settings.timezone``), newest first."""
        async with self.sessionmaker() as session:
            rows = await repo.calls_for_agent_since(
                session, username, local_midnight(self.settings)
            )
        out = []
        for call, wrapped in rows:
            out.append(
                {
                    "id": call["id"],
                    "state": call["state"],
                    "caller": caller_of(call),
                    "caller_name": call["caller_name"],
                    "queue": call["queue"],
                    "customer_id": call["customer_id"],
                    "customer_name": customer_name(call),
                    "first_seen_at": _iso(call["first_seen_at"]),
                    "answered_at": _iso(call["answered_at"]),
                    "ended_at": _iso(call["ended_at"]),
                    "wrapped_up": wrapped,
                }
            )
        return out
