"""PostgreSQL's event store: one statement per event, made durable by group commit.

``write_event`` borrows a connection from the hot pool (``app.hot_pool``) and:

1. reads the call's row and whether the event is journaled (``one_trip.read``), unless this
   process kept the row its last write of the call returned (``app.calls.call_rows``);
2. plans on it, and writes call + journal + deliveries + audit rows as ONE autocommitted
   statement, conditional on the version planned on (``one_trip.write``);
3. when another event of the call wrote in between, reads and plans again; after
   ``OPTIMISTIC_ATTEMPTS`` it takes the row lock in a transaction instead (``_locked``).

Hot connections commit with ``synchronous_commit = off`` so the pop goes out as soon as the row
is written; ``durable()`` (``app.calls.group_commit``) holds the PBX's answer until a flush
that started after the write has put it on disk. A connection found dead at the event's first
statement (the database restarted) expires the pool and the event is tried once more.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.calls import one_trip
from app.calls import repository as repo
from app.calls.call_rows import CallRows
from app.calls.group_commit import GroupCommit
from app.calls.planning import CallRow
from app.calls.state_machine import FINAL_STATES
from app.calls.store import DUPLICATE, PlanFn, Written, journal_unapplied, write_plan
from app.errors import Overloaded
from app.hot_pool import HOT_CONNECTION_ERRORS, HotPool, PoolExhausted
from app.metrics import Metrics
from app.raw_statements import hot_connection, use_hot_connection
from telephony.events import CallEvent

# Optimistic writes (read, plan, write if unchanged) before an event takes the row lock.
OPTIMISTIC_ATTEMPTS = 3
# Sessions kept for the event path's look-ups between events (at most this many).
MAX_IDLE_SESSIONS = 32


class _StaleConnection(Exception):
    """The event's first statement found its hot connection dead: nothing was written."""


class PgStore:
    """The hot pool, the rows kept per call, and group commit (None: commit waits itself)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        pool: HotPool,
        group_commit: GroupCommit | None,
        metrics: Metrics | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.pool = pool
        self.group_commit = group_commit
        self.metrics = metrics
        # The row each call's last event wrote here, so its next event skips the read.
        self.rows = CallRows()
        self._idle_sessions: list[AsyncSession] = []

    async def write_event(
        self, event: CallEvent, record: Mapping[str, Any], plan: PlanFn
    ) -> Written:
        call_id = event.full_call_id
        for attempt in (1, 2):
            try:
                async with self.session() as session:
                    kept = self.rows.take(call_id) if attempt == 1 else None
                    if kept is not None:
                        found: tuple[bool, CallRow | None] = (False, kept)
                    else:
                        try:
                            found = await self._read(session, event)
                        except HOT_CONNECTION_ERRORS as exc:
                            if attempt == 2:
                                raise
                            raise _StaleConnection from exc  # nothing was written
                    written = await self._optimistic(
                        session, event, record, plan, found, unread=kept is not None
                    )
                    if written is None:
                        written = await self._locked(session, event, record, plan)
                    return written
            except _StaleConnection:
                # The database likely restarted: every pooled connection is gone, not just
                # this one; the pool opens new ones.
                self.pool.expire()
        raise AssertionError("unreachable")

    @staticmethod
    async def _read(session: AsyncSession, event: CallEvent) -> tuple[bool, CallRow | None]:
        return await one_trip.read(session, event.full_call_id, event.source, event.event_id)

    async def _optimistic(
        self,
        session: AsyncSession,
        event: CallEvent,
        record: Mapping[str, Any],
        plan: PlanFn,
        found: tuple[bool, CallRow | None],
        *,
        unread: bool,
    ) -> Written | None:
        """Plan on the row as read (``unread``: as this process last wrote it) and write it if
        nobody changed it; None: kept conflicting."""
        for attempt in range(OPTIMISTIC_ATTEMPTS):
            duplicate, row = found
            if duplicate:
                return DUPLICATE
            try:
                planned = await plan(session, row)
                written = await one_trip.write(
                    session,
                    record,
                    new=planned.new,
                    version=planned.version,
                    values=planned.values,
                    pushes=planned.pushes,
                    views=planned.views,
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
                # One statement: nothing of it stays.
                return await journal_unapplied(session, event, record, None)
            if written is not None:
                if written["state"] not in FINAL_STATES:
                    self.rows.put(event.full_call_id, written)
                return Written(duplicate=False, applied=planned.applied)
            if attempt + 1 < OPTIMISTIC_ATTEMPTS:
                found = await self._read(session, event)
            if self.metrics is not None and not found[0]:
                # Another event got in first (a copy of this one is a duplicate, not that).
                self.metrics.write_conflicts.inc()
        return None

    async def _locked(
        self, session: AsyncSession, event: CallEvent, record: Mapping[str, Any], plan: PlanFn
    ) -> Written:
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
            return DUPLICATE
        try:
            planned = await plan(session, row)
            while not await write_plan(session, planned):
                planned = await plan(session, await repo.lock_call(session, event.full_call_id))
            await tx.commit()
            return Written(duplicate=False, applied=planned.applied)
        except PoolTimeout:
            # Overloaded (a look-up found no session connection free): nothing stays
            # written; the provider retries the 503.
            await tx.rollback()
            raise
        except Exception:
            await tx.rollback()
            return await journal_unapplied(session, event, record, journal_id)

    async def durable(self) -> None:
        if self.group_commit is not None:
            await self.group_commit.wait()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose raw statements run on a hot connection, each committing on its own
        unless a transaction is begun on it; what is not raw goes through the session's own
        connection, committed at the end."""
        try:
            conn = await self.pool.acquire()
        except PoolExhausted as exc:
            raise Overloaded(
                "the server is overloaded (no database connection free); retry shortly"
            ) from exc
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
            self.pool.release(conn)
            if reusable and len(self._idle_sessions) < MAX_IDLE_SESSIONS:
                session.expunge_all()
                self._idle_sessions.append(session)
            else:
                await session.close()

    async def close(self) -> None:
        if self.group_commit is not None:
            await self.group_commit.close()
        while self._idle_sessions:
            await self._idle_sessions.pop().close()
        await self.pool.close()
