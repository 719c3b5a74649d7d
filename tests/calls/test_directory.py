"""Agents and queues named by events, answered from tables of every user, queue and dialed
number, read again when stale (both backends)."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.directory import AgentRef, Directory, QueueRef, agent_table
from app.queues import service as queues
from app.queues.models import Queue
from app.users import service as users


class _Row(NamedTuple):
    username: str
    role: str
    extension: str | None
    worker_id: str | None


def test_a_username_wins_over_an_equal_extension_or_worker_id() -> None:
    table = agent_table(
        [
            _Row("ann", "agent", "bob", None),  # ann's extension is "bob"
            _Row("bob", "supervisor", "2001", "WK-1"),
        ]
    )
    assert table["bob"] == AgentRef("bob", "supervisor", True)
    assert table["2001"] == table["WK-1"] == AgentRef("bob", "supervisor", True)
    assert table["ann"] == AgentRef("ann", "agent", True)


async def _add(session: AsyncSession, username: str, **fields: Any) -> None:
    await users.upsert_user(
        session, username=username, role="agent", password="pw-xxxxxxxx", **fields
    )
    await session.flush()


async def test_many_lookups_read_the_tables_once(session: AsyncSession, backend: str) -> None:
    await _add(session, "dir-ann", extension="7101")
    await _add(session, "dir-bob", worker_id="WKdir")
    await queues.upsert_queue(session, name="dir-q", numbers=["+442079460001"], pop_mode="answer")
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        statements.append(sql)

    engine = session.get_bind()
    sa_event.listen(engine, "before_cursor_execute", count)
    directory = Directory()
    try:
        for _ in range(3):
            assert await directory.agent(session, "7101") == AgentRef("dir-ann", "agent", True)
            assert await directory.agent(session, "WKdir") == AgentRef("dir-bob", "agent", True)
            assert await directory.agent(session, "dir-ann") == AgentRef("dir-ann", "agent", True)
            assert await directory.queue(session, "dir-q") == QueueRef("dir-q", "answer")
            number = await directory.queue_for_number(session, "+442079460001")
            assert number == QueueRef("dir-q", "answer")
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    # users; queues with their numbers (PostgreSQL: and the fingerprint of both, first)
    assert len(statements) == (3 if backend == "postgresql" else 2), statements


async def test_a_user_added_after_the_table_was_read_is_found(session: AsyncSession) -> None:
    directory = Directory()
    await _add(session, "dir-early", extension="7201")
    assert await directory.agent(session, "7201") == AgentRef("dir-early", "agent", True)
    await _add(session, "dir-late", extension="7202")
    assert await directory.agent(session, "7202") == AgentRef("dir-late", "agent", True)
    # Nobody: kept raw, not an agent of ours.
    assert await directory.agent(session, "7299") == AgentRef("7299", "agent", False)


async def test_a_stale_table_is_read_again(session: AsyncSession) -> None:
    directory = Directory(ttl_s=0.0)
    await _add(session, "dir-move", extension="7301")
    assert await directory.agent(session, "7301") == AgentRef("dir-move", "agent", True)
    await users.upsert_user(
        session, username="dir-move", role="agent", password=None, extension="7302"
    )
    await session.flush()
    assert await directory.agent(session, "7302") == AgentRef("dir-move", "agent", True)
    assert await directory.agent(session, "7301") == AgentRef("7301", "agent", False)


async def test_a_queue_nobody_created_is_created_and_unknown_numbers_reach_none(
    session: AsyncSession,
) -> None:
    directory = Directory()
    assert await directory.queue_for_number(session, "+442079460099") is None
    assert await directory.queue(session, "dir-new") == QueueRef("dir-new", "offer")
    created = await session.scalar(select(Queue.pop_mode).where(Queue.name == "dir-new"))
    assert created == "offer"


async def test_unchanged_tables_are_checked_not_read(session: AsyncSession, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no md5: the tables are read every time")
    directory = Directory(ttl_s=0.0)
    await _add(session, "dir-same", extension="7501")
    assert await directory.agent(session, "7501") == AgentRef("dir-same", "agent", True)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        statements.append(sql)

    engine = session.get_bind()
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        assert await directory.agent(session, "7501") == AgentRef("dir-same", "agent", True)
        unchanged = len(statements)
        await _add(session, "dir-other", extension="7502")
        statements.clear()
        assert await directory.agent(session, "7502") == AgentRef("dir-other", "agent", True)
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    assert unchanged == 1  # the fingerprint only
    assert len(statements) >= 3  # changed: read again


async def test_an_unknown_agent_is_kept_raw_and_logged_once_per_name(
    session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    directory = Directory(ttl_s=0.0)  # every look-up misses the cache: still one warning
    with caplog.at_level(logging.WARNING, logger="app.calls.directory"):
        for _ in range(3):
            assert await directory.agent(session, "ghost-1") == AgentRef("ghost-1", "agent", False)
            assert await directory.agent(session, "ghost-2") == AgentRef("ghost-2", "agent", False)
    warned = [r.getMessage() for r in caplog.records if "no active user" in r.getMessage()]
    assert len(warned) == 2 and "'ghost-1'" in warned[0] and "'ghost-2'" in warned[1]
