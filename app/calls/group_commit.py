"""Event writes committed without waiting for the disk, made durable in groups before the
webhook is answered (PostgreSQL, ``SCREENPOP_GROUP_COMMIT``, on by default).

An event's write is one autocommitted statement; with ``synchronous_commit`` on, its round trip
includes the WAL flush (fdatasync): ~0.4 ms of the pop's 2.5 ms p50 and ~2 ms of its p99 on
the bench machine. The hot pool's connections commit with ``synchronous_commit = off``
instead, so the pop goes to the agent as soon as the row is written, and ``GroupCommit.wait``
holds the answer to the PBX until the write is on disk: one small transaction that writes a
WAL record and commits with ``synchronous_commit = on`` flushes the WAL up to its own commit
record, and so every commit made before it, for every event waiting at that moment
(``tests/calls/test_durability.py`` crashes a server of its own to check it).

What this keeps: an event is answered 202 only once its journal row is durable; a PBX that
gets no answer sends the event again, and the journal's de-duplication makes the second one
a no-op or the first. What it changes: after a database crash, an agent may have seen a pop
whose event the database lost (and the PBX then sends again: the same pop, the same version).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from app.errors import Overloaded, Unavailable
from app.hot_pool import HOT_CONNECTION_ERRORS, HotPool, PoolExhausted

# One round trip (simple query protocol). The transaction must write WAL of its own: PostgreSQL
# commits a transaction that wrote none (a bare ``txid_current()``) without flushing, whatever
# synchronous_commit says. A transactional logical message is a WAL record that changes no
# table; with synchronous_commit = on the commit then flushes the WAL up to its own record,
# and so every commit made before it.
FLUSH_SQL = (
    "BEGIN; SET LOCAL synchronous_commit = on; "
    "SELECT pg_logical_emit_message(true, 'screenpop', 'group-commit'); COMMIT"
)
# What the hot pool's connections set (``app.hot_pool.create_hot_pool``).
SERVER_SETTINGS = {"synchronous_commit": "off"}


class GroupCommit:
    """``await wait()``: every commit made on the hot pool before the call is on disk."""

    def __init__(self, pool: HotPool) -> None:
        self.pool = pool
        self._next: asyncio.Future[None] | None = None  # the flush not started yet
        self._runner: asyncio.Task[None] | None = None
        self.flushes = 0

    async def wait(self) -> None:
        """Return once a flush that started after this call has finished; ``Overloaded``
        (no connection came free) or ``Unavailable`` (the flush failed) otherwise."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="group-commit")
        try:
            await asyncio.shield(waiting)
        except PoolExhausted as exc:
            raise Overloaded("no database connection came free to confirm the write") from exc
        except Exception as exc:
            raise Unavailable(f"the database did not confirm the write is on disk: {exc}") from exc

    async def _run(self) -> None:
        while self._next is not None:
            # Waiters that arrive from now on join the next flush: this one may not cover
            # their commits.
            batch, self._next = self._next, None
            try:
                await self._flush()
            except BaseException as exc:
                if not batch.done():
                    error = exc if isinstance(exc, Exception) else RuntimeError("flush cancelled")
                    batch.set_exception(error)
                    batch.exception()  # retrieved here: every waiter re-raises it
                if not isinstance(exc, Exception):
                    raise
            else:
                if not batch.done():
                    batch.set_result(None)

    async def _flush(self) -> None:
        for attempt in (1, 2):
            conn: Any = await self.pool.acquire()
            try:
                await conn.execute(FLUSH_SQL)
                self.flushes += 1
                return
            except BaseException as exc:
                # In an unknown state (dropped, cancelled, a failed transaction): not back into
                # the pool as it is.
                with contextlib.suppress(Exception):
                    conn.terminate()
                if attempt == 2 or not isinstance(exc, HOT_CONNECTION_ERRORS):
                    raise
                # The database dropped its connections (a restart): a flush is safe to repeat.
                self.pool.expire()
            finally:
                self.pool.release(conn)

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        if self._next is not None and not self._next.done():
            self._next.set_exception(RuntimeError("shutting down"))
            self._next.exception()
