"""PostgreSQL's ingest transaction on the hot pool (plain asyncpg, not the session's pool)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.calls import one_trip, pg_store
from tests.calls.support import TERMINATE_OTHERS, event, journal_rows, new_call_id, running_app
from tests.conftest import add_user


async def test_a_warm_event_takes_no_session_connection(
    postgresql_only: None, clean_engine: AsyncEngine, database_url: str
) -> None:
    await add_user(clean_engine, "hot-ann", extension="7401")
    await add_user(clean_engine, "hot-bob", extension="7402")
    async with running_app(database_url) as app:
        engine: AsyncEngine = app.state["engine"]
        assert app.state["services"]["calls"].store.pool is not None
        call_id = new_call_id()
        # The first events warm the directory (the queue is created through the session).
        assert (await app.post(event(call_id, "queued", queue="sales"))).status_code == 202
        offer = event(call_id, "offered", queue="sales", agent="7401")
        assert (await app.post(offer)).status_code == 202
        checkouts: list[Any] = []

        def count(*_args: Any) -> None:
            checkouts.append(1)

        sa_event.listen(engine.sync_engine.pool, "checkout", count)
        try:
            # Another agent, named by extension: answered from the directory's user table.
            second = await app.post(event(call_id, "offered", queue="sales", agent="7402"))
            third = await app.post(event(call_id, "ended", queue="sales"))
        finally:
            sa_event.remove(engine.sync_engine.pool, "checkout", count)
        assert second.status_code == 202 and second.json()["duplicate"] is False
        assert third.status_code == 202 and third.json()["duplicate"] is False
        assert checkouts == []
    assert await journal_rows(clean_engine) == 4


async def test_hot_connections_killed_by_the_database_are_replaced_without_an_error(
    postgresql_only: None, clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        # Several pooled connections (as under load), all killed as a restart would.
        first = [event(new_call_id(), "queued", queue="sales") for _ in range(4)]
        answers = await asyncio.gather(*(app.post(body) for body in first))
        assert [a.status_code for a in answers] == [202] * 4
        async with clean_engine.connect() as admin:
            killed = (await admin.execute(text(TERMINATE_OTHERS))).all()
        assert len(killed) >= 2, "the pools should hold several connections to kill"
        body = event(new_call_id(), "queued", queue="sales")
        after = await app.post(body)
        assert after.status_code == 202, after.text
        assert after.json()["duplicate"] is False
    assert await journal_rows(clean_engine) == 5


@pytest.mark.parametrize("optimistic", [True, False], ids=["one-trip", "row-lock"])
async def test_a_failed_apply_on_the_hot_pool_is_journaled_unapplied_and_nothing_else(
    postgresql_only: None,
    clean_engine: AsyncEngine,
    database_url: str,
    optimistic: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not optimistic:
        monkeypatch.setattr(pg_store, "OPTIMISTIC_ATTEMPTS", 0)
    async with running_app(database_url) as app:
        service = app.state["services"]["calls"]

        async def broken(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError("the state machine blew up")

        monkeypatch.setattr(service.planner, "plan", broken)
        body = event(new_call_id(), "queued", queue="sales")
        response = await app.post(body)
        assert response.status_code == 202
        async with clean_engine.connect() as conn:
            journal = (await conn.execute(text("SELECT applied FROM call_events"))).all()
            calls = (await conn.execute(text("SELECT count(*) FROM calls"))).scalar_one()
        assert [row.applied for row in journal] == [False]
        assert calls == 0


@pytest.mark.parametrize("optimistic", [True, False], ids=["one-trip", "row-lock"])
async def test_concurrent_offers_of_one_call_all_land(
    postgresql_only: None,
    clean_engine: AsyncEngine,
    database_url: str,
    optimistic: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ring-all: offers to six agents posted at once. With optimistic writes they conflict and
    re-plan; through the row lock they queue. Either way every offer is applied once."""
    if not optimistic:
        monkeypatch.setattr(pg_store, "OPTIMISTIC_ATTEMPTS", 0)
    agents = [f"ring{i}" for i in range(6)]
    for name in agents:
        await add_user(clean_engine, name)
    async with running_app(database_url) as app:
        call_id = new_call_id()
        assert (await app.post(event(call_id, "queued", queue="sales"))).status_code == 202
        offers = [
            event(call_id, "offered", queue="sales", agent=name, event_id=f"{call_id}:offer:{name}")
            for name in agents
        ]
        answers = await asyncio.gather(*(app.post(body) for body in offers))
        assert [a.status_code for a in answers] == [202] * len(agents)
        assert all(a.json()["duplicate"] is False for a in answers)
        async with clean_engine.connect() as conn:
            offered_to = (
                await conn.execute(
                    text("SELECT offered_to FROM calls WHERE id = :id"),
                    {"id": f"generic:{call_id}"},
                )
            ).scalar_one()
            applied = (
                await conn.execute(text("SELECT count(*) FROM call_events WHERE applied"))
            ).scalar_one()
            deliveries = (
                await conn.execute(text("SELECT count(*) FROM pop_deliveries"))
            ).scalar_one()
        assert sorted(offered_to) == agents
        assert applied == 1 + len(agents)
        assert deliveries == len(agents)


async def test_a_stale_write_writes_nothing_and_a_journaled_event_reads_as_duplicate(
    postgresql_only: None, clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        call_id = new_call_id()
        body = event(call_id, "queued", queue="sales")
        assert (await app.post(body)).status_code == 202
        store = app.state["services"]["calls"].store
        async with store.connection() as conn:
            duplicate, row = await one_trip.read(
                conn, store.dialect, f"generic:{call_id}", "generic", body["event_id"]
            )
            assert duplicate is True and row is not None and row["version"] == 1
            fresh, _ = await one_trip.read(
                conn, store.dialect, f"generic:{call_id}", "generic", "another"
            )
            assert fresh is False
            record = {
                "call_id": f"generic:{call_id}",
                "source": "generic",
                "event_id": "stale-one",
                "kind": "ended",
                "occurred_at": row["queued_at"],
                "received_at": row["queued_at"],
                "event": {},
                "raw": {},
                "applied": True,
            }
            # Planned on version 0, but the row is at version 1: nothing may land.
            written = await one_trip.write(
                conn,
                store.dialect,
                record,
                new=False,
                version=0,
                values={"state": "ended", "version": 1},
                pushes=[],
                views=[],
            )
            assert written is None
    async with clean_engine.connect() as conn:
        state = (await conn.execute(text("SELECT state FROM calls"))).scalar_one()
    assert state == "queued"
    assert await journal_rows(clean_engine) == 1


async def test_the_read_leaves_the_pop_undecoded_but_names_the_customer(
    postgresql_only: None, clean_engine: AsyncEngine, database_url: str
) -> None:
    from app.calls import repository as repo
    from app.calls.pop import customer_name, value_tier

    async with running_app(database_url) as app:
        call_id = new_call_id()
        body = event(call_id, "queued", queue="sales")
        assert (await app.post(body)).status_code == 202
        doc = {"customer": {"name": 'Zoë O\'Brien \\ "Ltd"'}, "insights": {"value_tier": "gold"}}
        async with clean_engine.begin() as conn:
            await conn.execute(
                text("UPDATE calls SET pop = CAST(:doc AS jsonb)"), {"doc": json.dumps(doc)}
            )
        store = app.state["services"]["calls"].store
        async with store.connection() as conn:
            _, row = await one_trip.read(conn, store.dialect, f"generic:{call_id}", "generic", "x")
        async with app.state["sessionmaker"]() as session:
            full = await repo.get_call(session, f"generic:{call_id}")
        assert row is not None and full is not None
        assert "pop" not in row
        assert customer_name(row) == customer_name(full) == doc["customer"]["name"]
        assert value_tier(row) == value_tier(full) == "gold"
        assert one_trip.with_pop(row)["pop"] == full["pop"] == doc
