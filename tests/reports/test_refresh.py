"""The reports are refreshed by every ``train`` run (full and ``--since``) and by
``screenpop reports refresh``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from typer.testing import CliRunner

from app import demo, migrate
from app.cli import cli
from app.customers.importer import import_orders
from app.customers.models import Interaction
from app.db import create_engine
from app.insights.models import CustomerInsight
from app.insights.train import train
from app.reports.customer_base import RefreshOptions
from app.reports.models import RetentionMonth, ValueDay
from app.settings import get_settings
from tests.conftest import make_settings
from tests.insights.data import NOW, shop, write_csv
from tests.reports import hand_shop

AS_OF = NOW.replace(tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")


async def _tables(engine: AsyncEngine) -> tuple[list[RetentionMonth], list[ValueDay]]:
    async with engine.connect() as conn:
        months = (await conn.execute(select(RetentionMonth))).all()
        days = (await conn.execute(select(ValueDay))).all()
    return [RetentionMonth(**r._mapping) for r in months], [ValueDay(**r._mapping) for r in days]


async def test_train_full_and_since_refresh_the_reports(
    clean_engine: AsyncEngine, tmp_path: Path
) -> None:
    await import_orders(clean_engine, write_csv(tmp_path / "shop.csv", shop()))
    await train(clean_engine, now=AS_OF, reports=RefreshOptions(defection_intervals=2))
    months, days = await _tables(clean_engine)
    async with clean_engine.connect() as conn:
        scored = (await conn.execute(select(func.count()).select_from(CustomerInsight))).scalar()
        segments = set((await conn.execute(select(CustomerInsight.segment))).scalars())
    # The shop's 24 customers all bought in January: new then, and in train's segments.
    assert sum(m.new for m in months) == 24
    assert {m.segment for m in months} == segments
    assert {m.as_of for m in months} == {date(2011, 11, 1)}  # train's "now"
    assert {m.defection_intervals for m in months} == {2.0}
    assert sum(d.customers for d in days) == scored == 24
    assert len({d.day for d in days}) == 1
    # A --since run the same day: the day's snapshot is replaced, not added to.
    await train(clean_engine, since=AS_OF - timedelta(days=30))
    again, days_again = await _tables(clean_engine)
    assert len({d.day for d in days_again}) == 1 and sum(d.customers for d in days_again) == 24
    assert {m.defection_intervals for m in again} == {3.0}  # the setting's default
    newest = max(line.at for line in shop()).replace(tzinfo=LONDON).astimezone(UTC).date()
    assert {m.as_of for m in again} == {newest}  # a --since run is as of the newest order


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/reports.db"
    monkeypatch.setenv("SCREENPOP_DATABASE_URL", url)
    monkeypatch.setenv("SCREENPOP_DEFECTION_INTERVALS", "4")
    get_settings.cache_clear()
    return url


def test_reports_refresh_command(database: str, tmp_path: Path) -> None:
    async def load() -> None:
        await migrate.upgrade_async(database)
        engine = create_engine(database)
        try:
            await hand_shop.load(engine, tmp_path)
            async with AsyncSession(engine) as session:  # a wrap-up three days ago
                recorded = datetime.now(UTC) - timedelta(days=3)
                session.add(Interaction(agent="alice", disposition="done", created_at=recorded))
                await session.commit()
        finally:
            await engine.dispose()

    async def read() -> list[RetentionMonth]:
        engine = create_engine(database)
        try:
            return (await _tables(engine))[0]
        finally:
            await engine.dispose()

    asyncio.run(load())
    result = CliRunner().invoke(cli, ["reports", "refresh"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    # As of the newest order (F's, Apr 20): April is the last month.
    assert summary["as_of"] == "2011-04-20" and summary["customers"] == 6
    today = datetime.now(ZoneInfo(get_settings().timezone)).date()
    rolled = summary["call_rollup"]  # the call reports' rollup, from that wrap-up's day
    assert rolled["rolled_to"] == today.isoformat() and rolled["first"] < today.isoformat()
    months = asyncio.run(read())
    assert {m.month.isoformat()[:7] for m in months} == {"2011-01", "2011-02", "2011-03", "2011-04"}
    assert {m.defection_intervals for m in months} == {4.0}  # SCREENPOP_DEFECTION_INTERVALS
    get_settings.cache_clear()


async def test_the_demo_shows_the_reports_of_a_database_trained_before_them(
    clean_engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    """``serve --demo`` on a database that has customers but no report rows refreshes them
    (a new demo database gets them from the seed's ``train``)."""
    await hand_shop.load(clean_engine, tmp_path)
    await demo.seed(make_settings(database_url))
    months, days = await _tables(clean_engine)
    assert sum(m.new for m in months) == 6 and sum(d.customers for d in days) == 6
