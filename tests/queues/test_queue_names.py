"""A queue name (or a dialed number) that does not fit its column is refused naming the field
and the limit, wherever it comes in: ``screenpop queue add``, ``screenpop user add --queues``,
the queue service on both databases, and the history API. Never cut short, never created.
(An event naming such a queue is refused at the webhook: tests/calls/test_event_limits.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from typer.testing import CliRunner

from app.cli import cli
from app.db import create_engine
from app.errors import Invalid
from app.queues import service as queues
from app.queues.models import Queue, QueueNumber
from app.settings import get_settings
from app.users import service as users
from app.users.models import User
from tests.calls.conftest import build_world
from tests.calls.support import bearer, running_app

LONG = "q" * 500


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path}/names.db"
    monkeypatch.setenv("SCREENPOP_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


async def _rows(url: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    try:
        async with AsyncSession(engine) as session:
            counts = [
                await session.scalar(select(func.count()).select_from(table))
                for table in (Queue, QueueNumber, User)
            ]
            return (int(counts[0] or 0), int(counts[1] or 0), int(counts[2] or 0))
    finally:
        await engine.dispose()


def test_queue_add_refuses_a_long_name_or_number_and_creates_nothing(database: str) -> None:
    runner = CliRunner()
    long_name = runner.invoke(cli, ["queue", "add", LONG])
    assert long_name.exit_code == 2, long_name.output
    said = " ".join(long_name.output.split())
    assert "queue name" in said and "500 characters" in said and "limit is 64" in said
    long_number = runner.invoke(cli, ["queue", "add", "sales", "--numbers", "1" * 40])
    assert long_number.exit_code == 2, long_number.output
    assert "numbers" in long_number.output and "32" in long_number.output
    assert asyncio.run(_rows(database)) == (0, 0, 0)
    fits = runner.invoke(cli, ["queue", "add", "q" * 64])
    assert fits.exit_code == 0, fits.output


def test_user_add_refuses_a_queue_name_longer_than_any_queue(database: str) -> None:
    runner = CliRunner()
    refused = runner.invoke(
        cli, ["user", "add", "ann", "--queues", f"sales,{LONG}", "--password-stdin"], input="pw\n"
    )
    assert refused.exit_code == 2, refused.output
    said = " ".join(refused.output.split())
    assert "queues" in said and "limit is 64" in said
    assert asyncio.run(_rows(database)) == (0, 0, 0)


async def test_the_queue_service_refuses_what_does_not_fit_on_both_databases(
    session: AsyncSession,
) -> None:
    for name, numbers, field in (
        (LONG, None, "queue name"),
        ("nul\x00queue", None, "queue name"),
        ("   ", None, "queue name"),
        ("sales", ["+44" + "1" * 40], "numbers"),
    ):
        with pytest.raises(Invalid, match=field):
            await queues.upsert_queue(session, name=name, numbers=numbers)
    with pytest.raises(Invalid, match="queues"):
        await users.upsert_user(
            session, username="ann", role="agent", password="pw-xxxxxxxx", queues=[LONG]
        )
    names = await session.scalars(select(Queue.name).where(Queue.name.in_([LONG, "sales"])))
    assert names.all() == []
    assert await session.scalar(select(func.count()).where(User.username == "ann")) == 0


async def test_history_refuses_a_queue_name_longer_than_any_queue(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    await build_world(clean_engine)
    async with running_app(database_url) as app:
        response = await app.http.get(
            "/api/queues/history", params={"queue": LONG}, headers=bearer("root", "admin")
        )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("queue:")
