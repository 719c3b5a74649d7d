"""Agents' pop receipts (``ack`` / ``seen`` on ``WS /ws/agent``) and the server's own (the pop
was written to the agent's socket, with its latency from the event's arrival), written in
batches.

Every pop is acknowledged by the screen, and a transaction per receipt was a notable share of
the server's CPU under load. ``ReceiptWriter.add`` queues a receipt and returns at once; a
background task writes the queue ``receipt_flush_ms`` after a batch's first receipt arrived,
or as soon as ``BATCH_SIZE`` are waiting, in one transaction and one statement
(``repository.record_receipts``: the same result as applying them one by one, in order).

Receipts are idempotent (the first delivered / seen time wins), so a batch whose write failed
is written again with the next one; a receipt that failed twice is dropped. The queue is
bounded: past ``MAX_PENDING`` the oldest receipts are dropped. Drops are logged and counted
(``screenpop_receipts_dropped_total``). ``close`` writes what is still queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.calls import repository as repo
from app.calls.repository import Receipt, Written

log = logging.getLogger(__name__)

BATCH_SIZE = 200
MAX_PENDING = 10_000
# Failures and drops are logged at most this often (a database outage would repeat them
# every flush).
WARN_EVERY_S = 10.0
_INT_MAX = 2**31 - 1  # pop_deliveries.version is a 32-bit integer
_KEY_MAX = 200  # pop_deliveries.call_id is the longer key column


def storable(key: str) -> bool:
    """Whether a delivery row can have this call id or username.

    PostgreSQL refuses NUL and unpaired surrogates in text: such a value from a screen must
    not make the whole batch fail. No row has it, so leaving it out changes nothing.
    """
    if len(key) > _KEY_MAX or "\x00" in key:
        return False
    try:
        key.encode()
    except UnicodeEncodeError:
        return False
    return True


class ReceiptWriter:
    """The queue of receipts not yet written, and the task that writes it; one per service."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        flush_interval_s: float,
        batch_size: int = BATCH_SIZE,
        max_pending: int = MAX_PENDING,
        metrics: Any | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.metrics = metrics
        self.dropped = 0
        self._pending: deque[Receipt | Written] = deque()
        # How many receipts at the head of ``_pending`` were in a batch whose write failed.
        self._failed_once = 0
        self._queued = asyncio.Event()
        self._full = asyncio.Event()
        self._lock = asyncio.Lock()  # one write at a time, so batches land in arrival order
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._warned_at: dict[str, float] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(
        self, call_id: str, username: str, version: int | None, at: datetime, *, seen: bool
    ) -> None:
        """Queue a receipt: written within ``flush_interval_s``, sooner when a batch fills."""
        if version is not None:
            # Same comparison against any stored version, and it fits the batch's int array.
            version = max(-_INT_MAX - 1, min(version, _INT_MAX))
        self._queue(Receipt(call_id, username, version, at, seen))

    def add_written(self, call_id: str, username: str, latency_ms: float) -> None:
        """Queue the latency of a pop written to the agent's socket (pop health, read back by
        the queue statistics' rebuild); written like a receipt."""
        self._queue(Written(call_id, username, latency_ms))

    def _queue(self, item: Receipt | Written) -> None:
        if not (storable(item.call_id) and storable(item.username)):
            return
        if self._closed:
            self._drop(1, "closed")
            return
        self._pending.append(item)
        self._trim()
        self._queued.set()
        if len(self._pending) >= self.batch_size:
            self._full.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="pop-receipts")

    async def flush(self) -> None:
        """Write every receipt queued so far; a failure is logged and retried with the next."""
        async with self._lock:
            self._queued.clear()
            self._full.clear()
            if not self._pending:
                return
            batch = list(self._pending)
            self._pending.clear()
            failed_once, self._failed_once = self._failed_once, 0
            try:
                async with self.sessionmaker() as session:
                    await repo.record_receipts(
                        session, [r for r in batch if isinstance(r, Receipt)]
                    )
                    await repo.record_written(session, [w for w in batch if isinstance(w, Written)])
                    await session.commit()
            except Exception:
                self._warn(
                    "failed",
                    "writing %d pop receipts failed; retrying them with the next batch",
                    len(batch) - failed_once,
                    exc_info=True,
                )
                self._drop(failed_once, "failed")
                self._requeue(batch[failed_once:], failed_once=len(batch) - failed_once)
            except BaseException:
                # Cancelled mid-write: not the receipts' fault; written again (idempotent).
                self._requeue(batch, failed_once=failed_once)
                raise

    async def close(self) -> None:
        """Stop the background task and write what is still queued (shutdown)."""
        self._closed = True
        self._queued.set()
        self._full.set()
        if self._task is not None:
            [outcome] = await asyncio.gather(self._task, return_exceptions=True)
            if isinstance(outcome, BaseException):
                log.error("the pop receipt writer stopped: %r", outcome)
            self._task = None
        await self.flush()
        if self._pending:  # the last write failed: once more
            await self.flush()
        if self._pending:
            self._drop(len(self._pending), "shutdown")
            self._pending.clear()

    async def _run(self) -> None:
        while not self._closed:
            await self._queued.wait()
            if not self._full.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_interval_s):
                        await self._full.wait()
            try:
                await self.flush()
            except Exception:
                log.exception("flushing pop receipts failed")

    def _requeue(self, receipts: list[Receipt | Written], *, failed_once: int) -> None:
        self._pending.extendleft(reversed(receipts))
        self._failed_once = failed_once
        self._trim()
        if self._pending:
            self._queued.set()

    def _trim(self) -> None:
        """Drop the oldest receipts past ``max_pending``."""
        excess = len(self._pending) - self.max_pending
        if excess <= 0:
            return
        for _ in range(excess):
            self._pending.popleft()
        self._failed_once = max(0, self._failed_once - excess)
        self._drop(excess, "overflow")

    def _drop(self, count: int, reason: str) -> None:
        if count <= 0:
            return
        self.dropped += count
        if self.metrics is not None:
            self.metrics.receipts_dropped.labels(reason=reason).inc(count)
        self._warn(
            reason,
            "dropped %d pop receipts (%s); %d dropped since start",
            count,
            reason,
            self.dropped,
        )

    def _warn(self, kind: str, message: str, *args: Any, exc_info: bool = False) -> None:
        now = time.monotonic()
        if now - self._warned_at.get(kind, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._warned_at[kind] = now
            log.warning(message, *args, exc_info=exc_info)
