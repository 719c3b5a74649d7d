"""PostgreSQL's ingest transaction on the hot pool (plain asyncpg, not the session's pool)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.calls.support import event, journal_rows, new_call_id, running_app


@pytest.fixture
def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("the hot pool exists on PostgreSQL only; SQLite keeps the session path")


async def test_a_warm_event_takes_no_session_connection(
    postgresql_only: None, clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        engine: AsyncEngine = app.state["engine"]
        assert app.state["services"]["calls"].hot_pool is not None
        call_id = new_call_id()
        # The first event warms the directory (the queue is created through the session).
        assert (await app.post(event(call_id, "queued", queue="sales"))).status_code == 202
        checkouts: list[Any] = []

        def count(*_args: Any) -> None:
            checkouts.append(1)

        sa_event.listen(engine.sync_engine.pool, "checkout", count)
        try:
            second = await app.post(event(call_id, "ended", queue="sales"))
        finally:
            sa_event.remove(engine.sync_engine.pool, "checkout", count)
        assert second.status_code == 202 and second.json()["duplicate"] is False
        assert checkouts == []
    assert await journal_rows(clean_engine) == 2


async def test_hot_connections_killed_by_the_database_are_replaced_without_an_error(
    postgresql_only: None, clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        hot_pool = app.state["services"]["calls"].hot_pool
        assert (await app.post(event(new_call_id(), "queued", queue="sales"))).status_code == 202
        pids = [
            conn.get_server_pid() for conn in [holder._con for holder in hot_pool._holders] if conn
        ]
        assert pids, "the pool kept no connection to kill"
        async with clean_engine.connect() as admin:
            for pid in pids:
                await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        body = event(new_call_id(), "queued", queue="sales")
        after = await app.post(body)
        assert after.status_code == 202, after.text
        assert after.json()["duplicate"] is False
    assert await journal_rows(clean_engine) == 2


async def test_a_failed_apply_on_the_hot_pool_is_journaled_unapplied_and_nothing_else(
    postgresql_only: None, clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        service = app.state["services"]["calls"]

        async def broken(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError("the state machine blew up")

        service._apply = broken
        body = event(new_call_id(), "queued", queue="sales")
        response = await app.post(body)
        assert response.status_code == 202
        async with clean_engine.connect() as conn:
            journal = (await conn.execute(text("SELECT applied FROM call_events"))).all()
            calls = (await conn.execute(text("SELECT count(*) FROM calls"))).scalar_one()
        assert [row.applied for row in journal] == [False]
        assert calls == 0
