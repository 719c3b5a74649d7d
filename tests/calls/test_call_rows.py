"""The row a call's last event wrote, kept for its next event (PostgreSQL's event path)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.calls import one_trip
from app.calls.call_rows import CallRows
from tests.calls.support import TERMINATE_OTHERS, event, journal_rows, new_call_id, running_app
from tests.conftest import add_user


def _row(version: int) -> dict[str, Any]:
    return {"id": "c", "version": version}


def test_rows_are_taken_once_bounded_and_dropped_when_a_newer_version_is_reported() -> None:
    rows = CallRows(size=2)
    rows.put("a", _row(1))
    rows.put("b", _row(1))
    rows.put("a", _row(2))  # written again: the most recent now
    rows.put("c", _row(1))  # over the bound: the least recently written ("b") goes
    assert len(rows) == 2
    assert rows.take("b") is None
    rows.changed("a", 2)  # our own change: kept
    rows.changed("c", 2)  # another instance's newer change: dropped
    assert rows.take("c") is None
    assert rows.take("a") == _row(2)
    assert rows.take("a") is None  # taken: two events of one call never share a copy


async def test_the_row_kept_is_the_row_a_read_returns(
    postgresql_only: None, clean_engine: AsyncEngine, database_url: str
) -> None:
    await add_user(clean_engine, "rows-ann")
    async with running_app(database_url) as app:
        service = app.state["services"]["calls"]
        call_id = new_call_id()
        full_id = f"generic:{call_id}"
        for body in (
            event(call_id, "queued", queue="sales", caller="+447700900123"),
            event(call_id, "offered", queue="sales", agent="rows-ann"),
        ):
            assert (await app.post(body)).status_code == 202
            kept = service.store.rows.take(full_id)
            async with service.store.connection() as conn:
                _, read = await one_trip.read(conn, service.store.dialect, full_id, "generic", "x")
            assert kept is not None and kept == read
            service.store.rows.put(full_id, kept)


async def test_the_next_event_of_a_call_is_one_statement(
    postgresql_only: None, clean_engine: AsyncEngine, database_url: str
) -> None:
    await add_user(clean_engine, "rows-bob")
    async with running_app(database_url) as app:
        engine: AsyncEngine = app.state["engine"]
        call_id = new_call_id()
        assert (await app.post(event(call_id, "queued", queue="sales"))).status_code == 202
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
            statements.append(sql)

        hot_log = app.state["services"]["calls"].store.query_log.listeners
        sa_event.listen(engine.sync_engine, "before_cursor_execute", count)
        hot_log.append(statements.append)
        try:
            offer = await app.post(event(call_id, "offered", queue="sales", agent="rows-bob"))
        finally:
            sa_event.remove(engine.sync_engine, "before_cursor_execute", count)
            hot_log.remove(statements.append)
        assert offer.status_code == 202 and offer.json()["duplicate"] is False
        # The presence write-behind (app.queues.runtime.flush_presence) may tick in the window:
        # it is not the event's path.
        event_path = [sql for sql in statements if "agent_presence" not in sql]
        assert len(event_path) == 1 and event_path[0].lstrip().startswith("WITH"), statements


async def test_a_kept_row_changed_behind_our_back_is_read_again(
    postgresql_only: None, clean_engine: AsyncEngine, database_url: str
) -> None:
    """Another writer (an instance whose message has not arrived) moved the call on: the
    write planned on the kept row changes nothing, the event reads and plans again."""
    await add_user(clean_engine, "rows-cy")
    async with running_app(database_url) as app:
        service = app.state["services"]["calls"]
        call_id = new_call_id()
        full_id = f"generic:{call_id}"
        assert (await app.post(event(call_id, "queued", queue="sales"))).status_code == 202
        async with clean_engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE calls SET version = version + 1, dialed = '+442079460123'"
                    " WHERE id = :id"
                ),
                {"id": full_id},
            )
        registry = service.metrics.registry
        conflicts = registry.get_sample_value("screenpop_call_write_conflicts_total")
        offer_body = event(call_id, "offered", queue="sales", agent="rows-cy")
        offer = await app.post(offer_body)
        assert offer.status_code == 202 and offer.json()["duplicate"] is False
        assert registry.get_sample_value("screenpop_call_write_conflicts_total") == conflicts + 1
        async with clean_engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT state, version, dialed FROM calls WHERE id = :id"), {"id": full_id}
                )
            ).one()
        # A copy of the offer on top of the row it kept: a duplicate, not a conflict.
        again = await app.post(offer_body)
        assert again.status_code == 202 and again.json()["duplicate"] is True
        assert registry.get_sample_value("screenpop_call_write_conflicts_total") == conflicts + 1
        # The other writer's change survives; the offer applied on top of it.
        assert (row.state, row.version, row.dialed) == ("ringing", 3, "+442079460123")
    assert await journal_rows(clean_engine) == 2


async def test_a_newer_version_from_another_instance_drops_the_kept_row(
    postgresql_only: None, clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        service = app.state["services"]["calls"]
        call_id = new_call_id()
        full_id = f"generic:{call_id}"
        assert (await app.post(event(call_id, "queued", queue="sales"))).status_code == 202
        hub = app.state["hub"]
        # Our own change message (same version) went through the hub already: still kept.
        # (In-process, listeners run inside ``publish``.)
        assert len(service.store.rows) == 1
        await hub.publish("calls", {"type": "call.change", "call_id": full_id, "version": 2})
        assert service.store.rows.take(full_id) is None


async def test_a_kept_call_after_the_database_dropped_its_connections(
    postgresql_only: None, clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        call_id = new_call_id()
        assert (await app.post(event(call_id, "queued", queue="sales"))).status_code == 202
        async with clean_engine.connect() as admin:
            await admin.execute(text(TERMINATE_OTHERS))
        after = await app.post(event(call_id, "ended", queue="sales"))
        assert after.status_code == 202, after.text
        assert after.json()["duplicate"] is False
        # A call that ended is not kept (its next event, if any, reads).
        assert app.state["services"]["calls"].store.rows.take(f"generic:{call_id}") is None
    async with clean_engine.connect() as conn:
        state = (await conn.execute(text("SELECT state FROM calls"))).scalar_one()
    assert state == "abandoned"  # ended while queued
