"""The hot pool against a real PostgreSQL: reuse, the size bound, hand-over, timeouts, restarts."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.hot_pool import HotPool, PoolExhausted, create_hot_pool


@pytest.fixture
def pg_engine(backend: str, clean_engine: AsyncEngine) -> AsyncEngine:
    if backend != "postgresql":
        pytest.skip("the hot pool is PostgreSQL's")
    return clean_engine


def pool_of(engine: AsyncEngine, size: int = 2, timeout_s: float = 0.3) -> HotPool:
    pool = create_hot_pool(engine, size=size, timeout_s=timeout_s)
    assert pool is not None
    return pool


async def test_sqlite_has_no_hot_pool(backend: str, clean_engine: AsyncEngine) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite only")
    assert create_hot_pool(clean_engine, size=2, timeout_s=1) is None


async def test_a_released_connection_is_lent_again_and_json_decodes(pg_engine: AsyncEngine) -> None:
    pool = pool_of(pg_engine)
    try:
        first = await pool.acquire()
        value = await first.fetchval("""SELECT '{"a": [1, 2]}'::jsonb""")
        assert value == {"a": [1, 2]}
        assert await first.fetchval("""SELECT '[true]'::json""") == [True]
        pool.release(first)
        again = await pool.acquire()
        assert again is first
        pool.release(again)
    finally:
        await pool.close()


async def test_at_most_size_connections_and_a_waiter_gets_the_released_one(
    pg_engine: AsyncEngine,
) -> None:
    pool = pool_of(pg_engine, size=2, timeout_s=5)
    try:
        a, b = await pool.acquire(), await pool.acquire()
        assert a is not b
        third = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0.05)
        assert not third.done()  # the pool is full: it waits
        pool.release(b)
        assert await asyncio.wait_for(third, 1) is b
        pool.release(a)
        pool.release(b)
        assert len(pool.idle) == 2
    finally:
        await pool.close()


async def test_a_full_pool_refuses_after_its_timeout(pg_engine: AsyncEngine) -> None:
    pool = pool_of(pg_engine, size=1, timeout_s=0.2)
    try:
        held = await pool.acquire()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(PoolExhausted):
            await pool.acquire()
        assert 0.15 <= loop.time() - started < 2
        pool.release(held)
        assert await pool.acquire() is held  # nothing leaked by the refused wait
        pool.release(held)
    finally:
        await pool.close()


async def test_connections_killed_by_the_server_are_replaced(pg_engine: AsyncEngine) -> None:
    pool = pool_of(pg_engine, size=2, timeout_s=2)
    try:
        a, b = await pool.acquire(), await pool.acquire()
        pids = {a.get_server_pid(), b.get_server_pid()}
        pool.release(a)
        pool.release(b)
        async with pg_engine.connect() as admin:
            for pid in pids:
                await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        pool.expire()  # what the event path does when a statement finds its connection dead
        assert pool.idle == []
        fresh = await pool.acquire()
        assert await fresh.fetchval("SELECT 1") == 1
        assert fresh.get_server_pid() not in pids
        pool.release(fresh)
    finally:
        await pool.close()


async def test_releasing_a_dead_connection_frees_its_slot_for_a_waiter(
    pg_engine: AsyncEngine,
) -> None:
    pool = pool_of(pg_engine, size=1, timeout_s=5)
    try:
        held = await pool.acquire()
        waiting = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0.05)
        held.terminate()
        pool.release(held)  # closed: not lent again; the waiter opens a new one
        fresh = await asyncio.wait_for(waiting, 5)
        assert fresh is not held and await fresh.fetchval("SELECT 2") == 2
        pool.release(fresh)
    finally:
        await pool.close()
