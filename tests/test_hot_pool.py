"""The hot pool (asyncpg's own pool) against a real PostgreSQL: codecs, reset, query log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.hot_pool import HotPool, QueryLog, create_hot_pool


@pytest.fixture
def pg_engine(backend: str, clean_engine: AsyncEngine) -> AsyncEngine:
    if backend != "postgresql":
        pytest.skip("the hot pool is PostgreSQL's")
    return clean_engine


@pytest.fixture
async def logged(pg_engine: AsyncEngine) -> AsyncIterator[tuple[HotPool, list[str]]]:
    """A pool of one connection, with the query log attached to it."""
    log = QueryLog()
    seen: list[str] = []
    log.listeners.append(seen.append)
    pool = await create_hot_pool(pg_engine, size=1, timeout_s=1)
    assert pool is not None
    async with pool.acquire() as conn:
        conn.add_query_logger(log)
    yield pool, seen
    await pool.close()


async def test_sqlite_has_no_hot_pool(backend: str, clean_engine: AsyncEngine) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite only")
    assert await create_hot_pool(clean_engine, size=2, timeout_s=1) is None


async def test_json_columns_decode_and_encode_like_sqlalchemys(
    logged: tuple[HotPool, list[str]],
) -> None:
    pool, _ = logged
    async with pool.acquire() as conn:
        assert await conn.fetchval("""SELECT '{"a": [1, 2]}'::jsonb""") == {"a": [1, 2]}
        assert await conn.fetchval("""SELECT '[true]'::json""") == [True]
        # Bound values: serialised text as it is (SQLAlchemy's processors give text), or a value.
        assert await conn.fetchval("SELECT $1::jsonb", '{"b": 1}') == {"b": 1}
        assert await conn.fetchval("SELECT $1::jsonb", {"c": [None]}) == {"c": [None]}


async def test_release_sends_no_statement_but_rolls_back_a_transaction(
    logged: tuple[HotPool, list[str]],
) -> None:
    pool, seen = logged
    async with pool.acquire() as conn:
        await conn.execute("SELECT 1")
        first = conn.get_server_pid()
    assert seen == ["SELECT 1"], "releasing a clean connection runs nothing"
    conn = await pool.acquire()
    assert conn.get_server_pid() == first  # the same connection, lent again
    await conn.execute("BEGIN")
    await pool.release(conn)
    async with pool.acquire() as again:
        assert not again.is_in_transaction()
        assert await again.fetchval("SELECT pg_backend_pid()") == first


async def test_server_settings_apply_to_every_connection(pg_engine: AsyncEngine) -> None:
    pool = await create_hot_pool(
        pg_engine, size=1, timeout_s=1, server_settings={"synchronous_commit": "off"}
    )
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW synchronous_commit") == "off"
    finally:
        await pool.close()
