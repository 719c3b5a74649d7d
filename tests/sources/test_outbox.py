"""The outbox: written in the caller's transaction, delivered exactly once through an outage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.sources import outbox
from app.sources.config import SourcesConfig, parse_config
from app.sources.deliver import Deliverer, sign
from app.sources.fetchers import source_engine
from app.sources.models import OutboxMessage
from tests.sources.support import EXAMPLE_ENV, CrmProcess, readme_example, run_sql
from tests.support.server import free_port

WRAPUP = {"call_id": "generic:c-1", "agent": "alice", "disposition": "resolved",
          "notes": "asked about the teapot", "satisfaction": 5}  # fmt: skip


class Clock:
    """The deliverer's idea of now, moved by the test (backoff without waiting)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def crm_destination(url: str, **extra: Any) -> SourcesConfig:
    text_ = readme_example("crm").replace("https://crm.example.com", url)
    for key, value in extra.items():
        text_ += f"{key} = {value}\n"
    return parse_config(text_, EXAMPLE_ENV)


async def message(engine: AsyncEngine, message_id: str) -> Any:
    async with engine.connect() as conn:
        table = OutboxMessage.__table__
        return (await conn.execute(select(table).where(table.c.id == message_id))).one()


def test_the_signature_is_the_standard_webhooks_one() -> None:
    # The example in the Standard Webhooks specification's reference libraries.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


async def test_an_activity_exists_only_if_its_transaction_commits(
    clean_engine: AsyncEngine,
) -> None:
    config = crm_destination("http://127.0.0.1:9")
    async with clean_engine.connect() as conn:
        async with conn.begin():
            [kept] = await outbox.enqueue(conn, config, "wrapup", WRAPUP)
        transaction = await conn.begin()
        [dropped] = await outbox.enqueue(conn, config, "wrapup", WRAPUP)
        await transaction.rollback()
        assert await outbox.enqueue(conn, config, "call_end", WRAPUP) == []  # not subscribed
        ids = (await conn.execute(select(OutboxMessage.id))).scalars().all()
    assert ids == [kept] and dropped != kept


@pytest.fixture
def down_port() -> Iterator[int]:
    yield free_port()


async def test_a_wrapup_reaches_a_destination_that_was_down_exactly_once(
    clean_engine: AsyncEngine, down_port: int
) -> None:
    destination = CrmProcess(down_port)
    config = crm_destination(destination.url)
    async with clean_engine.begin() as conn:
        [message_id] = await outbox.enqueue(conn, config, "wrapup", WRAPUP)
    clock = Clock()
    deliverer = Deliverer(clean_engine, config, clock=clock)
    try:
        # Down for a minute: every due attempt fails and is put off with a growing backoff.
        for _ in range(5):
            assert await deliverer.deliver_due() == 0
            clock.advance(15)
        row = await message(clean_engine, message_id)
        assert row.status == "pending" and row.attempts >= 3 and "Connect" in row.last_error
        destination.start()
        clock.advance(600)
        assert await deliverer.deliver_due() == 1
        clock.advance(3600)
        assert await deliverer.deliver_due() == 0  # delivered: never sent again
        received = destination.get("/received")
    finally:
        destination.stop()
        await deliverer.close()
    # The receiver checked the signature with its own code (401 otherwise), once.
    assert [r["id"] for r in received] == [message_id]  # type: ignore[union-attr]
    body = received[0]["body"]  # type: ignore[index]
    assert body["type"] == "call.wrapup" and body["data"]["disposition"] == "resolved"
    row = await message(clean_engine, message_id)
    assert row.status == "delivered" and row.delivered_at is not None


async def test_a_message_fails_after_its_attempts_and_an_admin_can_retry_it(
    clean_engine: AsyncEngine, down_port: int
) -> None:
    config = crm_destination(f"http://127.0.0.1:{down_port}", max_attempts=2)
    async with clean_engine.begin() as conn:
        [message_id] = await outbox.enqueue(conn, config, "wrapup", WRAPUP)
    clock = Clock()
    deliverer = Deliverer(clean_engine, config, clock=clock)
    try:
        for _ in range(3):
            await deliverer.deliver_due()
            clock.advance(3600)
    finally:
        await deliverer.close()
    row = await message(clean_engine, message_id)
    assert (row.status, row.attempts) == ("failed", 2)
    async with clean_engine.begin() as conn:
        assert await outbox.counts(conn) == {"pending": 0, "delivered": 0, "failed": 1}
        assert await outbox.retry(conn, message_id)
        assert not await outbox.retry(conn, "msg_unknown")
    row = await message(clean_engine, message_id)
    assert (row.status, row.attempts) == ("pending", 0)


async def test_a_sql_destination_gets_one_row_per_activity(
    clean_engine: AsyncEngine, erp_url: str
) -> None:
    await run_sql(
        erp_url,
        "CREATE TABLE call_log (message_id VARCHAR(40) PRIMARY KEY, call_id VARCHAR(200),"
        " agent VARCHAR(64), disposition VARCHAR(64), notes TEXT, logged_at DATETIME)",
    )
    config = parse_config(
        f"""
[destinations.erp_log]
kind = "sql"
url = "{erp_url}"
statement = '''INSERT INTO call_log (message_id, call_id, agent, disposition, notes, logged_at)
  VALUES (:id, :call_id, :agent, :disposition, :notes, NOW())'''
"""
    )
    async with clean_engine.begin() as conn:
        [message_id] = await outbox.enqueue(conn, config, "wrapup", WRAPUP)
    deliverer = Deliverer(clean_engine, config)
    try:
        assert await deliverer.deliver_due() == 1
        # A repeat (say the process died before marking it delivered) adds no second row.
        await deliverer._insert(
            "erp_log", config.destinations["erp_log"], await message(clean_engine, message_id)
        )
    finally:
        await deliverer.close()
    erp = source_engine(erp_url, pool_size=1)
    try:
        async with erp.connect() as conn:
            rows = (await conn.execute(text("SELECT message_id, agent, notes FROM call_log"))).all()
    finally:
        await erp.dispose()
    assert [tuple(r) for r in rows] == [(message_id, "alice", "asked about the teapot")]


async def test_a_down_destination_does_not_hold_up_another(
    clean_engine: AsyncEngine, down_port: int, crm: CrmProcess
) -> None:
    config = parse_config(
        f"""
[destinations.down]
kind = "http"
url = "http://127.0.0.1:{down_port}/hooks"
[destinations.crm]
kind = "http"
url = "{crm.url}/hooks/screenpop"
secret = "${{CRM_WEBHOOK_SECRET}}"
""",
        EXAMPLE_ENV,
    )
    async with clean_engine.begin() as conn:
        first = await outbox.enqueue(conn, config, "wrapup", WRAPUP)
        second = await outbox.enqueue(conn, config, "wrapup", {**WRAPUP, "call_id": "generic:c-2"})
    deliverer = Deliverer(clean_engine, config)
    try:
        assert await deliverer.deliver_due() == 2  # both activities reached the CRM
    finally:
        await deliverer.close()
    down = [await message(clean_engine, ids[0]) for ids in (first, second)]
    # The down destination was tried once this round; its second message waits its turn.
    assert sorted(m.attempts for m in down) == [0, 1]
    assert all(m.status == "pending" for m in down)
