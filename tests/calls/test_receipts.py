"""Pop receipts written in batches (app/calls/receipts.py), on both backends.

The writer runs against the real database with hand-made ``pop_deliveries`` rows, so each
test states exactly which versions were pushed and which receipts arrived, in which order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.calls.agent_ws import handle_client_message
from app.calls.models import PopDelivery
from app.calls.receipts import ReceiptWriter
from app.db import create_engine, create_sessionmaker
from app.errors import NotFound
from app.metrics import Metrics
from app.users.service import Principal
from tests.calls.conftest import ADA_PHONE, World
from tests.calls.support import event as call_event
from tests.calls.support import new_call_id, running_app

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
Times = tuple[datetime | None, datetime | None]


def t(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def pushed(engine: AsyncEngine, rows: list[tuple[str, str, int]]) -> None:
    """Delivery rows as a push leaves them: (call id, username, version), no receipt yet."""
    async with AsyncSession(engine) as session:
        await session.execute(
            insert(PopDelivery),
            [{"call_id": c, "username": u, "version": v, "pushed_at": T0} for c, u, v in rows],
        )
        await session.commit()


async def receipts(engine: AsyncEngine) -> dict[str, Times]:
    """(delivered_at, seen_at) by call id."""
    async with AsyncSession(engine) as session:
        rows = await session.execute(
            select(PopDelivery.call_id, PopDelivery.delivered_at, PopDelivery.seen_at)
        )
        return {r[0]: (r[1], r[2]) for r in rows}


@asynccontextmanager
async def writing(
    sessionmaker: async_sessionmaker[AsyncSession], **options: Any
) -> AsyncIterator[ReceiptWriter]:
    """A writer whose background task never flushes on its own unless the test asks."""
    options.setdefault("flush_interval_s", 600.0)
    writer = ReceiptWriter(sessionmaker, **options)
    try:
        yield writer
    finally:
        await writer.close()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_a_batch_of_acks_is_one_statement_in_one_transaction(
    clean_engine: AsyncEngine,
) -> None:
    calls = [f"c{i:03}" for i in range(150)]
    await pushed(clean_engine, [(c, "alice", 1) for c in calls])
    statements: list[str] = []
    commits: list[object] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "pop_deliveries" in statement:
            statements.append(statement)

    def on_commit(conn: Any) -> None:
        commits.append(conn)

    async with writing(create_sessionmaker(clean_engine)) as writer:
        for i, c in enumerate(calls):
            writer.add(c, "alice", 1, t(i), seen=i % 3 == 0)
        assert writer.pending == 150
        event.listen(clean_engine.sync_engine, "before_cursor_execute", on_execute)
        event.listen(clean_engine.sync_engine, "commit", on_commit)
        try:
            await writer.flush()
        finally:
            event.remove(clean_engine.sync_engine, "before_cursor_execute", on_execute)
            event.remove(clean_engine.sync_engine, "commit", on_commit)
        assert writer.pending == 0
    assert len(statements) == 1 and len(commits) == 1
    got = await receipts(clean_engine)
    assert got == {c: (t(i), t(i) if i % 3 == 0 else None) for i, c in enumerate(calls)}


async def test_an_ack_of_an_older_version_does_not_confirm_a_newer_push(
    clean_engine: AsyncEngine,
) -> None:
    await pushed(clean_engine, [("x", "alice", 2), ("y", "alice", 2), ("z", "bob", 2)])
    async with writing(create_sessionmaker(clean_engine)) as writer:
        writer.add("x", "alice", 1, t(1), seen=True)
        await writer.flush()
        assert await receipts(clean_engine) == {"x": (None, None), "y": (None, None),
                                                "z": (None, None)}  # fmt: skip
        # One batch: the stale ack is skipped, the next one for the same row counts.
        writer.add("x", "alice", 1, t(2), seen=True)
        writer.add("x", "alice", 2, t(3), seen=False)
        writer.add("y", "alice", None, t(4), seen=True)  # no version: confirms what is there
        writer.add("z", "bob", 3, t(5), seen=False)  # newer than the push: confirms it
        await writer.flush()
    assert await receipts(clean_engine) == {
        "x": (t(3), None),
        "y": (t(4), t(4)),
        "z": (t(5), None),
    }


async def test_receipts_apply_in_arrival_order_and_the_first_time_wins(
    clean_engine: AsyncEngine,
) -> None:
    await pushed(clean_engine, [("a", "alice", 1), ("b", "alice", 1), ("c", "alice", 1)])
    async with writing(create_sessionmaker(clean_engine)) as writer:
        writer.add("a", "alice", 1, t(1), seen=True)  # seen before the ack: both times
        writer.add("a", "alice", 1, t(2), seen=False)
        writer.add("b", "alice", 1, t(1), seen=False)
        writer.add("b", "alice", 1, t(2), seen=True)
        writer.add("b", "alice", 1, t(3), seen=True)
        writer.add("c", "alice", 1, t(9), seen=False)  # arrival order, not the earliest time
        writer.add("c", "alice", 1, t(8), seen=False)
        await writer.flush()
        assert await receipts(clean_engine) == {
            "a": (t(1), t(1)),
            "b": (t(1), t(2)),
            "c": (t(9), None),
        }
        writer.add("a", "alice", 1, t(10), seen=True)  # a later batch changes nothing set
        writer.add("c", "alice", 1, t(11), seen=True)
        await writer.flush()
    assert await receipts(clean_engine) == {
        "a": (t(1), t(1)),
        "b": (t(1), t(2)),
        "c": (t(9), t(11)),
    }


async def test_the_background_task_writes_a_full_batch_at_once_and_others_after_the_interval(
    clean_engine: AsyncEngine,
) -> None:
    calls = [f"f{i}" for i in range(20)]
    await pushed(clean_engine, [(c, "alice", 1) for c in [*calls, "late"]])

    async def written(expected: int) -> bool:
        got = await receipts(clean_engine)
        return sum(1 for delivered, _ in got.values() if delivered is not None) == expected

    sessionmaker = create_sessionmaker(clean_engine)
    async with writing(sessionmaker, batch_size=20) as writer:
        for c in calls[:-1]:
            writer.add(c, "alice", 1, t(1), seen=False)
        await asyncio.sleep(0.2)
        assert await written(0)  # 19 of 20, a 600 s interval: still waiting
        writer.add(calls[-1], "alice", 1, t(1), seen=False)
        await eventually(lambda: written(20))
    async with writing(sessionmaker, flush_interval_s=0.05) as writer:
        writer.add("late", "alice", 1, t(2), seen=False)
        await eventually(lambda: written(21))
        assert writer.pending == 0


async def test_a_failed_write_is_retried_once_with_the_next_batch(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    await pushed(clean_engine, [("r1", "alice", 1), ("r2", "alice", 1), ("r3", "alice", 1)])
    # A database that cannot be opened (its directory does not exist).
    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'db.sqlite'}")
    metrics = Metrics()
    try:
        async with writing(create_sessionmaker(broken), metrics=metrics) as writer:
            writer.add("r1", "alice", 1, t(1), seen=False)
            await writer.flush()  # fails: r1 kept for the next batch
            assert writer.pending == 1 and writer.dropped == 0
            writer.add("r2", "alice", 1, t(2), seen=False)
            await writer.flush()  # fails again: r1 dropped, r2 kept
            assert writer.pending == 1 and writer.dropped == 1
            writer.sessionmaker = create_sessionmaker(clean_engine)  # the database is back
            writer.add("r3", "alice", 1, t(3), seen=False)
            await writer.flush()
            assert writer.pending == 0 and writer.dropped == 1
    finally:
        await broken.dispose()
    assert await receipts(clean_engine) == {
        "r1": (None, None),
        "r2": (t(2), None),
        "r3": (t(3), None),
    }
    sample = metrics.registry.get_sample_value
    assert sample("screenpop_receipts_dropped_total", {"reason": "failed"}) == 1


async def test_the_queue_is_bounded_and_drops_the_oldest(clean_engine: AsyncEngine) -> None:
    calls = [f"q{i}" for i in range(8)]
    await pushed(clean_engine, [(c, "alice", 1) for c in calls])
    metrics = Metrics()
    sessionmaker = create_sessionmaker(clean_engine)
    async with writing(sessionmaker, max_pending=5, metrics=metrics) as writer:
        for i, c in enumerate(calls):
            writer.add(c, "alice", 1, t(i), seen=False)
        assert writer.pending == 5 and writer.dropped == 3
        await writer.flush()
    got = await receipts(clean_engine)
    assert got == {c: ((t(i), None) if i >= 3 else (None, None)) for i, c in enumerate(calls)}
    sample = metrics.registry.get_sample_value
    assert sample("screenpop_receipts_dropped_total", {"reason": "overflow"}) == 3


async def test_a_malformed_receipt_does_not_break_the_batch(clean_engine: AsyncEngine) -> None:
    await pushed(clean_engine, [("ok", "alice", 1), ("huge", "alice", 7)])
    async with writing(create_sessionmaker(clean_engine)) as writer:
        writer.add("nul\x00call", "alice", 1, t(1), seen=True)  # PostgreSQL refuses NUL
        writer.add("\ud800", "alice", 1, t(1), seen=True)  # an unpaired surrogate
        writer.add("x" * 500, "alice", 1, t(1), seen=True)  # longer than any call id
        writer.add("huge", "alice", 2**40, t(2), seen=False)  # past a 32-bit integer
        writer.add("ok", "alice", 1, t(3), seen=True)
        assert writer.pending == 2
        await writer.flush()
        assert writer.pending == 0 and writer.dropped == 0
    assert await receipts(clean_engine) == {"ok": (t(3), t(3)), "huge": (t(2), None)}


async def test_shutdown_writes_the_receipts_still_queued(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    cid = f"generic:{new_call_id()}"
    alice = Principal("alice", "agent")
    async with running_app(database_url, receipt_flush_ms=600_000) as app:
        await app.post(call_event(cid.split(":", 1)[1], "offered", caller=ADA_PHONE,
                                  agent="alice"))  # fmt: skip
        message = {"type": "seen", "call_id": cid, "version": 1}
        await handle_client_message(app.calls, alice, message)
        assert app.calls.receipts.pending == 1
        assert (await receipts(clean_engine))[cid] == (None, None)
    delivered, seen = (await receipts(clean_engine))[cid]
    assert delivered is not None and seen == delivered


async def test_an_ack_for_a_pop_never_sent_to_the_agent_is_not_found_and_not_queued(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    """No such call, a call offered only to someone else, a call id no row can have: each
    is ``not_found`` and nothing is queued or written; the agent's own pop is acknowledged."""
    cid = f"generic:{new_call_id()}"
    alice, bob = Principal("alice", "agent"), Principal("bob", "agent")
    async with running_app(database_url, receipt_flush_ms=600_000) as app:
        await app.post(call_event(cid.split(":", 1)[1], "offered", caller=ADA_PHONE,
                                  agent="alice"))  # fmt: skip
        for who, call_id in ((alice, "generic:no-such-call"), (bob, cid), (alice, "x\x00" * 200)):
            with pytest.raises(NotFound, match="call_id"):
                await handle_client_message(
                    app.calls, who, {"type": "ack", "call_id": call_id, "version": 1}
                )
        assert app.calls.receipts.pending == 0
        # The connection's own memory answers for a pop it holds, without asking the database.
        await handle_client_message(
            app.calls, alice, {"type": "ack", "call_id": cid, "version": 1}, held=lambda _: True
        )
        await handle_client_message(app.calls, alice, {"type": "seen", "call_id": cid})
        assert app.calls.receipts.pending == 2
    assert set(await receipts(clean_engine)) == {cid}
    delivered, seen = (await receipts(clean_engine))[cid]
    assert delivered is not None and seen is not None
