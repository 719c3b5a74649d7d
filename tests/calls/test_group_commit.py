"""Asynchronous commits on the hot pool, made durable in groups before events are answered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.calls import group_commit
from app.calls.group_commit import GroupCommit
from app.errors import Overloaded, Unavailable
from app.hot_pool import HotPool, create_hot_pool
from tests.calls.support import TERMINATE_OTHERS, event, new_call_id, running_app


@pytest.fixture
def pg_engine(backend: str, clean_engine: AsyncEngine) -> AsyncEngine:
    if backend != "postgresql":
        pytest.skip("group commit is the PostgreSQL hot pool's")
    return clean_engine


@pytest.fixture
async def pool(pg_engine: AsyncEngine) -> AsyncIterator[HotPool]:
    made = create_hot_pool(
        pg_engine, size=2, timeout_s=0.3, server_settings=group_commit.SERVER_SETTINGS
    )
    assert made is not None
    yield made
    await made.close()


async def test_hot_connections_commit_without_waiting_for_the_disk(
    pool: HotPool, pg_engine: AsyncEngine
) -> None:
    conn = await pool.acquire()
    try:
        assert await conn.fetchval("SHOW synchronous_commit") == "off"
    finally:
        pool.release(conn)
    plain = create_hot_pool(pg_engine, size=1, timeout_s=0.3)
    assert plain is not None
    conn = await plain.acquire()
    try:
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
    finally:
        plain.release(conn)
        await plain.close()


async def test_waiters_at_once_share_one_flush(pool: HotPool) -> None:
    commits = GroupCommit(pool)
    await asyncio.gather(*(commits.wait() for _ in range(20)))
    assert commits.flushes == 1


async def test_a_waiter_arriving_during_a_flush_waits_for_the_next(pool: HotPool) -> None:
    commits = GroupCommit(pool)
    first = asyncio.create_task(commits.wait())
    for _ in range(3):
        await asyncio.sleep(0)  # the first flush has taken its waiters and is in flight
    assert commits.flushes == 0
    second = asyncio.create_task(commits.wait())
    await first
    assert not second.done() or commits.flushes == 2
    await second
    assert commits.flushes == 2


async def test_a_failed_flush_is_unavailable_and_the_next_one_works(
    pool: HotPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = GroupCommit(pool)
    monkeypatch.setattr(group_commit, "FLUSH_SQL", "SELECT no_such_function()")
    with pytest.raises(Unavailable, match="did not confirm"):
        await commits.wait()
    monkeypatch.undo()
    await commits.wait()
    assert commits.flushes == 1


async def test_a_flush_after_the_database_dropped_its_connections_succeeds(
    pool: HotPool, pg_engine: AsyncEngine
) -> None:
    commits = GroupCommit(pool)
    await commits.wait()  # a pooled connection now
    async with pg_engine.connect() as admin:
        assert (await admin.execute(text(TERMINATE_OTHERS))).all()
    await commits.wait()
    assert commits.flushes == 2


async def test_no_connection_free_is_overloaded(pool: HotPool) -> None:
    commits = GroupCommit(pool)
    held = [await pool.acquire(), await pool.acquire()]
    try:
        with pytest.raises(Overloaded):
            await commits.wait()
    finally:
        for conn in held:
            pool.release(conn)


async def test_every_event_is_answered_after_a_flush(
    pg_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        commits = app.state["services"]["calls"].store.group_commit
        assert commits is not None
        call_id = new_call_id()
        body = event(call_id, "queued", queue="sales")
        for expected_duplicate in (False, True):  # the copy is answered after a flush too
            before = commits.flushes
            answer = await app.post(body)
            assert answer.status_code == 202
            assert answer.json()["duplicate"] is expected_duplicate
            assert commits.flushes == before + 1


async def test_group_commit_off_commits_each_write_on_its_own(
    pg_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url, group_commit=False) as app:
        service = app.state["services"]["calls"]
        assert service.store.group_commit is None
        conn = await service.store.pool.acquire()
        try:
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
        finally:
            service.store.pool.release(conn)
        answer = await app.post(event(new_call_id(), "queued", queue="sales"))
        assert answer.status_code == 202
