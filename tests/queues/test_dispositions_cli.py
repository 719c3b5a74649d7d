"""``screenpop queue add … --dispositions``: stored on the queue, served to the page, and a
malformed list refused with a message (SQLite file, the real command)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from app.cli import cli
from app.db import create_engine
from app.queues.models import Queue
from app.settings import get_settings


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path}/queues.db"
    monkeypatch.setenv("SCREENPOP_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


async def _stored(url: str, name: str) -> object:
    engine = create_engine(url)
    try:
        async with AsyncSession(engine) as session:
            return await session.scalar(select(Queue.dispositions).where(Queue.name == name))
    finally:
        await engine.dispose()


def test_queue_add_stores_its_dispositions(database: str) -> None:
    runner = CliRunner()
    added = runner.invoke(
        cli, ["queue", "add", "sales", "--dispositions", "sale=Sale made,Callback booked"]
    )
    assert added.exit_code == 0, added.output
    assert asyncio.run(_stored(database, "sales")) == [
        {"code": "sale", "label": "Sale made"},
        {"code": "callback_booked", "label": "Callback booked"},
    ]
    bad = runner.invoke(cli, ["queue", "add", "sales", "--dispositions", "a=A,a=B"])
    assert bad.exit_code == 2 and "given twice" in bad.output
    reset = runner.invoke(cli, ["queue", "add", "sales", "--dispositions", "default"])
    assert reset.exit_code == 0 and asyncio.run(_stored(database, "sales")) is None
