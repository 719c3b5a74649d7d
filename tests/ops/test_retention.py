"""``screenpop purge``: old finished calls, audit rows and receipts go; live and recent stay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from typer.testing import CliRunner, Result

from app import retention
from app.calls.models import Call, CallEventRecord, PopDelivery
from app.cli import cli
from app.customers.models import Customer, ProfileView
from app.settings import get_settings

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=200)
RECENT = NOW - timedelta(days=2)


async def seed(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as s:
        customer = Customer(name="Ann Lee")
        s.add(customer)
        await s.flush()
        calls = [
            ("old-ended", "ended", OLD),
            ("old-live", "answered", OLD),
            ("new-ended", "ended", RECENT),
        ]
        for call_id, state, at in calls:
            s.add(
                Call(id=call_id, source="generic", state=state, first_seen_at=at, last_event_at=at)
            )
            s.add(
                CallEventRecord(
                    call_id=call_id, source="generic", event_id=f"{call_id}-1", kind="queued",
                    occurred_at=at, received_at=at, event={}, raw={},
                )
            )  # fmt: skip
            s.add(PopDelivery(call_id=call_id, username="ann", version=1, pushed_at=at))
        s.add(ProfileView(username="ann", customer_id=customer.id, viewed_at=OLD))
        s.add(ProfileView(username="ann", customer_id=customer.id, viewed_at=RECENT))
        await s.commit()


async def rows(engine: AsyncEngine) -> dict[str, object]:
    async with AsyncSession(engine) as s:
        return {
            "calls": sorted(await s.scalars(select(Call.id))),
            "events": sorted(await s.scalars(select(CallEventRecord.call_id))),
            "deliveries": sorted(await s.scalars(select(PopDelivery.call_id))),
            "views": await s.scalar(select(func.count()).select_from(ProfileView)),
        }


async def test_purge_keeps_live_calls_and_recent_rows(clean_engine: AsyncEngine) -> None:
    await seed(clean_engine)
    before = retention.cutoff("90d")
    assert await retention.count(clean_engine, before) == {
        "journal": 1,
        "audit": 1,
        "deliveries": 2,
    }
    counts = await retention.purge(clean_engine, before)
    assert counts == {"journal": 1, "audit": 1, "deliveries": 1}
    assert await rows(clean_engine) == {
        "calls": ["new-ended", "old-live"],
        "events": ["new-ended", "old-live"],
        "deliveries": ["new-ended"],
        "views": 1,
    }
    assert await retention.purge(clean_engine, before) == {
        "journal": 0,
        "audit": 0,
        "deliveries": 0,
    }


async def test_purge_only_some_kinds(clean_engine: AsyncEngine) -> None:
    await seed(clean_engine)
    assert await retention.purge(clean_engine, retention.cutoff("90d"), ["audit"]) == {"audit": 1}
    assert (await rows(clean_engine))["calls"] == ["new-ended", "old-ended", "old-live"]
    with pytest.raises(ValueError, match="choose from"):
        await retention.purge(clean_engine, NOW, ["orders"])


def test_ages_and_dates() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert retention.cutoff("90d", now) == now - timedelta(days=90)
    assert retention.cutoff("12h", now) == now - timedelta(hours=12)
    assert retention.cutoff("2w", now) == now - timedelta(weeks=2)
    assert retention.cutoff("2026-06-01", now) == datetime(2026, 6, 1, tzinfo=UTC)
    with pytest.raises(retention.BadAge, match="90d"):
        retention.cutoff("ninety days", now)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    monkeypatch.setenv("SCREENPOP_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_cli_dry_run_then_purge(cli_env: None, clean_engine: AsyncEngine) -> None:
    await seed(clean_engine)
    runner = CliRunner()

    async def invoke(*args: str) -> Result:
        # The command runs its own event loop, so it gets a thread of its own.
        return await asyncio.to_thread(runner.invoke, cli, ["purge", *args])

    bad = await invoke("--older-than", "soon")
    assert bad.exit_code == 2 and "90d" in bad.output
    dry = await invoke("--older-than", "90d", "--dry-run", "--only", "audit")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["would_delete"] == {"audit": 1}
    done = await invoke("--older-than", "90d")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["deleted"] == {"journal": 1, "audit": 1, "deliveries": 1}
