"""``screenpop queue add … --dispositions`` and ``--ring-timeout-s``: stored on the queue,
served to the page, and a malformed value refused with a message (SQLite file, the real
command)."""

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


async def _ring_timeout(url: str, name: str) -> object:
    engine = create_engine(url)
    try:
        async with AsyncSession(engine) as session:
            return await session.scalar(select(Queue.ring_timeout_s).where(Queue.name == name))
    finally:
        await engine.dispose()


def test_queue_add_stores_its_ring_timeout(database: str) -> None:
    runner = CliRunner()
    added = runner.invoke(cli, ["queue", "add", "support", "--ring-timeout-s", "45"])
    assert added.exit_code == 0, added.output
    assert "ring timeout 45s" in added.output
    assert asyncio.run(_ring_timeout(database, "support")) == 45
    bad = runner.invoke(cli, ["queue", "add", "support", "--ring-timeout-s", "0"])
    assert bad.exit_code == 2 and "ring timeout must be a positive" in bad.output
    assert asyncio.run(_ring_timeout(database, "support")) == 45  # refused: nothing changed
    assert runner.invoke(cli, ["queue", "add", "sales"]).exit_code == 0
    assert asyncio.run(_ring_timeout(database, "sales")) == 30
