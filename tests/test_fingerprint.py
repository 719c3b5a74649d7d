"""A table's fingerprint changes with its rows and only then (PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.fingerprint import Fingerprint
from app.queues.models import Queue
from app.queues.service import upsert_queue

QUEUES = Fingerprint(select(Queue.name, Queue.pop_mode), select(Queue.name))


async def test_the_fingerprint_follows_the_rows(session: AsyncSession, backend: str) -> None:
    if backend != "postgresql":
        assert await QUEUES.read(session) is None  # SQLite: always "changed"
        return
    first = await QUEUES.read(session)
    assert first is not None and len(first) == 2
    assert await QUEUES.read(session) == first
    await upsert_queue(session, name="fp-one", pop_mode="offer")
    await session.flush()
    second = await QUEUES.read(session)
    assert second is not None and second[0] != first[0] and second[1] != first[1]
    await upsert_queue(session, name="fp-one", pop_mode="answer")
    await session.flush()
    third = await QUEUES.read(session)
    assert third is not None
    assert third[0] != second[0]  # the pop mode changed
    assert third[1] == second[1]  # the names did not


async def test_an_empty_table_has_a_fingerprint(session: AsyncSession, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    empty = Fingerprint(select(Queue.name).where(Queue.name == "nobody-at-all"))
    assert await empty.read(session) == ("",)
