"""PostgreSQL's event store: one statement per event, made durable by group commit.

``write_event`` borrows a connection from the hot pool (``app.hot_pool``) and:

1. reads the call's row and whether the event is journaled (``one_trip.read``), unless this
   process kept the row its last write of the call returned (``app.calls.call_rows``);
2. plans on it, and writes call + journal + deliveries + audit rows as ONE autocommitted
   statement, conditional on the version planned on (``one_trip.write``);
3. when another event of the call wrote in between, reads and plans again; after
   ``OPTIMISTIC_ATTEMPTS`` it does the same in a transaction that reads the row ``FOR
   UPDATE`` (``_locked``): the same statements, serialised on the row lock.

The planner's reads (directory, first-sight match and profile) run on the same hot connection
(``app.raw_statements.reads_on``); only what cannot run raw (a queue created on first use, say)
takes a session connection from the engine's pool. The event's writes go only through the hot
connection.

Hot connections commit with ``synchronous_commit = off`` so the pop goes out as soon as the row
is written; ``durable()`` (``app.calls.group_commit``) holds the PBX's answer until a flush
that started after the write has put it on disk. A connection found dead at the event's first
statement (the database restarted) expires the pool and the event is tried once more.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.calls import one_trip
from app.calls.call_rows import CallRows
from app.calls.group_commit import GroupCommit
from app.calls.planning import CallRow, Plan
from app.calls.state_machine import FINAL_STATES
from app.calls.store import DUPLICATE, PlanFn, Written, journal_unapplied
from app.errors import Overloaded, Unavailable
from app.hot_pool import HOT_CONNECTION_ERRORS, HotPool, PoolExhausted, QueryLog
from app.metrics import Metrics
from app.raw_statements import reads_on
from telephony.events import CallEvent

# Optimistic writes (read, plan, write if unchanged) before an event takes the row lock.
OPTIMISTIC_ATTEMPTS = 3
# Tries of an event whose connection the database dropped: the hot connection and the
# planner's session connection can each be found dead once after a restart.
CONNECTION_ATTEMPTS = 3
# Sessions kept for the event path's look-ups between events (at most this many).
MAX_IDLE_SESSIONS = 32


async def _plan_reading_on(
    plan: PlanFn, session: AsyncSession, conn: Any, row: CallRow | None
) -> Plan:
    with reads_on(conn):
        return await plan(session, row)


class _StaleConnection(Exception):
    """The event's first statement found its hot connection dead: nothing was written."""


class PgStore:
    """The hot pool, the rows kept per call, and group commit (None: commit waits itself)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        pool: HotPool,
        dialect: Dialect,
        group_commit: GroupCommit | None,
        metrics: Metrics | None = None,
        query_log: QueryLog | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.pool = pool
        self.dialect = dialect
        self.group_commit = group_commit
        self.metrics = metrics
        # Told of the statements events run on the hot connections, while it has listeners.
        self.query_log = query_log
        # The row each call's last event wrote here, so its next event skips the read.
        self.rows = CallRows()
        self._idle_sessions: list[AsyncSession] = []

    async def write_event(
        self, event: CallEvent, record: Mapping[str, Any], plan: PlanFn
    ) -> Written:
        call_id = event.full_call_id
        for attempt in range(1, CONNECTION_ATTEMPTS + 1):
            try:
                async with self.connection() as conn, self.session() as session:
                    planned = functools.partial(_plan_reading_on, plan, session, conn)

                    kept = self.rows.take(call_id) if attempt == 1 else None
                    if kept is not None:
                        found: tuple[bool, CallRow | None] = (False, kept)
                    else:
                        try:
                            found = await self._read(conn, event)
                        except HOT_CONNECTION_ERRORS as exc:
                            raise _StaleConnection from exc  # nothing was written
                    written = await self._optimistic(conn, event, record, planned, found)
                    if written is None:
                        written = await self._locked(conn, event, record, planned)
                    return written
            except _StaleConnection as exc:
                # The database likely restarted: every pooled connection is gone, not just
                # this one; the pool opens new ones (SQLAlchemy's pool does the same).
                lost = exc
                self.pool.expire()
        raise Unavailable("the database connection was lost; retry shortly") from lost

    async def _read(
        self, conn: Any, event: CallEvent, *, lock: bool = False
    ) -> tuple[bool, CallRow | None]:
        return await one_trip.read(
            conn, self.dialect, event.full_call_id, event.source, event.event_id, lock=lock
        )

    async def _write(self, conn: Any, record: Mapping[str, Any], planned: Any) -> CallRow | None:
        return await one_trip.write(
            conn,
            self.dialect,
            record,
            new=planned.new,
            version=planned.version,
            values=planned.values,
            pushes=planned.pushes,
            views=planned.views,
        )

    async def _optimistic(
        self,
        conn: Any,
        event: CallEvent,
        record: Mapping[str, Any],
        plan: Any,
        found: tuple[bool, CallRow | None],
    ) -> Written | None:
        """Plan on the row as read (or as this process last wrote it) and write it if nobody
        changed it; None: kept conflicting."""
        for attempt in range(OPTIMISTIC_ATTEMPTS):
            duplicate, row = found
            if duplicate:
                return DUPLICATE
            try:
                planned = await plan(row)
                written = await self._write(conn, record, planned)
            except HOT_CONNECTION_ERRORS as exc:
                # A connection the database dropped (the hot one, or the planner's session's):
                # try the event once more on fresh ones. If this write did land after all, the
                # read says duplicate and the agents get the pop from the replay on reconnect.
                raise _StaleConnection from exc
            except PoolTimeout:
                raise
            except DBAPIError as exc:
                if exc.connection_invalidated:  # the planner's session lost its connection
                    raise _StaleConnection from exc
                return await self._unapplied(conn, event, record)
            except Exception:
                # One statement: nothing of it stays.
                return await self._unapplied(conn, event, record)
            if written is not None:
                self.remember(event.full_call_id, written)
                return Written(duplicate=False, applied=planned.applied)
            if attempt + 1 < OPTIMISTIC_ATTEMPTS:
                found = await self._read(conn, event)
            if self.metrics is not None and not found[0]:
                # Another event got in first (a copy of this one is a duplicate, not that).
                self.metrics.write_conflicts.inc()
        return None

    async def _locked(
        self, conn: Any, event: CallEvent, record: Mapping[str, Any], plan: Any
    ) -> Written:
        """Read FOR UPDATE, plan, write, in one transaction: serialised on the call's row."""
        try:
            async with conn.transaction():
                while True:
                    duplicate, row = await self._read(conn, event, lock=True)
                    if duplicate:
                        return DUPLICATE
                    planned = await plan(row)
                    # None: the call was inserted by another event since the read (a new
                    # call locks nothing); read it, locked this time.
                    if await self._write(conn, record, planned) is not None:
                        return Written(duplicate=False, applied=planned.applied)
        except HOT_CONNECTION_ERRORS as exc:
            raise _StaleConnection from exc
        except PoolTimeout:
            # Overloaded (a look-up found no session connection free): nothing stays
            # written; the provider retries the 503.
            raise
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise _StaleConnection from exc
            return await self._unapplied(conn, event, record)
        except Exception:
            return await self._unapplied(conn, event, record)

    async def _unapplied(self, conn: Any, event: CallEvent, record: Mapping[str, Any]) -> Written:
        async def insert(values: Mapping[str, Any]) -> None:
            await one_trip.insert_journal(conn, self.dialect, values)

        return await journal_unapplied(event, record, insert)

    def remember(self, call_id: str, row: CallRow) -> None:
        """Kept for the call's next event; a call that ended is not kept."""
        if row["state"] not in FINAL_STATES:
            self.rows.put(call_id, row)

    def forget_older(self, call_id: str, version: int) -> None:
        self.rows.changed(call_id, version)

    async def durable(self) -> None:
        if self.group_commit is not None:
            await self.group_commit.wait()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A hot connection; ``Overloaded`` when none comes free in time."""
        try:
            conn = await self.pool.acquire()
        except PoolExhausted as exc:
            raise Overloaded(
                "the server is overloaded (no database connection free); retry shortly"
            ) from exc
        # Statements are reported only while someone listens (asyncpg times and records
        # every statement of a connection that has a query logger).
        logged = self.query_log is not None and bool(self.query_log.listeners)
        if logged:
            conn.add_query_logger(self.query_log)
        try:
            yield conn
        finally:
            if logged and not conn.is_closed():
                conn.remove_query_logger(self.query_log)
            # A connection the database dropped is closed by asyncpg and replaced on demand.
            self.pool.release(conn)

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session whose raw reads run on a hot connection (background work: pop
        completion must not cost a session connection per late pop under load)."""
        async with self.connection() as conn, self.session() as session:
            with reads_on(conn):
                yield session

    async def replace_pop(self, call_id: str, pop_version: int, doc: Mapping[str, Any]) -> bool:
        async with self.connection() as conn:
            return await one_trip.update_pop(conn, self.dialect, call_id, pop_version, doc)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (and writes that stand alone, like a queue created on first
        use), committed at the end; kept for the next event when it ended cleanly."""
        # Closing a session per event costs a task (its close is shielded from
        # cancellation), and most events never use it.
        session = self._idle_sessions.pop() if self._idle_sessions else self.sessionmaker()
        reusable = False
        try:
            yield session
            if session.in_transaction():
                await session.commit()
            reusable = True
        finally:
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
