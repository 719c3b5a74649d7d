"""One migration history, up and down, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from app import migrate
from app.db import Base, create_engine
from tests.support.databases import drop_database, new_database


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade(backend: str, tmp_path: Path) -> None:
    url = await new_database(backend, tmp_path)
    try:
        await migrate.upgrade_async(url)
        expected = set(Base.metadata.tables)
        assert expected <= await _tables(url)
        await __import__("asyncio").to_thread(migrate.downgrade, url, "base")
        assert await _tables(url) <= {"alembic_version"}
        await migrate.upgrade_async(url)
        assert expected <= await _tables(url)
    finally:
        await drop_database(url)


async def test_models_match_migrations(database_url: str) -> None:
    """The migrated schema has every column the models declare (no drift)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:

            def columns(sync_conn: object) -> dict[str, set[str]]:
                insp = inspect(sync_conn)
                return {t: {c["name"] for c in insp.get_columns(t)} for t in Base.metadata.tables}

            found = await conn.run_sync(columns)
    finally:
        await engine.dispose()
    for name, table in Base.metadata.tables.items():
        assert {c.name for c in table.columns} <= found[name], name


async def _rows_after_upgrade(
    backend: str, tmp_path: Path, revision: str, inserts: list[str], query: str
) -> list[tuple[object, ...]]:
    """``query``'s rows once rows ``inserts`` put in at ``revision`` have migrated to head."""
    url = await new_database(backend, tmp_path)
    engine = create_engine(url)
    try:
        await migrate.upgrade_async(url, revision)
        async with engine.begin() as conn:
            for statement in inserts:
                await conn.execute(text(statement))
        await migrate.upgrade_async(url)
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(query))]
    finally:
        await engine.dispose()
        await drop_database(url)


async def test_customer_emails_are_filled_from_the_addresses_customers_have(
    backend: str, tmp_path: Path
) -> None:
    customers = (
        "INSERT INTO customers (id, name, customer_type, language, marketing_consent,"
        " email, emails, attributes, created_at) VALUES"
        " (1, 'A', 'consumer', 'en', false, 'a@x.org', '[\"A2@X.org\", \"a2@x.org\"]',"
        " '{}', CURRENT_TIMESTAMP),"
        " (2, 'B', 'consumer', 'en', false, 'b@x.org', '[]', '{}', CURRENT_TIMESTAMP)"
    )
    rows = await _rows_after_upgrade(
        backend,
        tmp_path,
        "4c8e2a1f9b60",
        [customers],
        "SELECT customer_id, email FROM customer_emails ORDER BY customer_id, email",
    )
    assert rows == [(1, "a2@x.org")]


async def test_wrap_ups_get_their_calls_queue(backend: str, tmp_path: Path) -> None:
    calls = (
        "INSERT INTO calls (id, source, channel, state, caller_raw, caller_withheld,"
        " queue, offered_to, match, pop_version, first_seen_at, version) VALUES"
        " ('g:1', 'g', 'phone', 'ended', '', false, 'sales', '[]', '{}', 1,"
        " CURRENT_TIMESTAMP, 1),"
        " ('g:2', 'g', 'phone', 'ended', '', false, NULL, '[]', '{}', 1,"
        " CURRENT_TIMESTAMP, 1)"
    )
    interactions = (
        "INSERT INTO interactions (id, channel, call_id, agent, offer_outcomes,"
        " created_at) VALUES"
        " (1, 'phone', 'g:1', 'alice', '[]', CURRENT_TIMESTAMP),"
        " (2, 'phone', 'g:1', 'bob', '[]', CURRENT_TIMESTAMP),"
        " (3, 'phone', 'g:2', 'alice', '[]', CURRENT_TIMESTAMP),"
        " (4, 'phone', NULL, 'alice', '[]', CURRENT_TIMESTAMP),"
        " (5, 'phone', 'g:gone', 'alice', '[]', CURRENT_TIMESTAMP)"
    )
    rows = await _rows_after_upgrade(
        backend,
        tmp_path,
        "c4e8a2f6b913",
        [calls, interactions],
        "SELECT id, queue FROM interactions ORDER BY id",
    )
    # Both legs of g:1 in sales; a call with no queue, no call, a purged call: unrouted.
    assert rows == [(1, "sales"), (2, "sales"), (3, None), (4, None), (5, None)]
