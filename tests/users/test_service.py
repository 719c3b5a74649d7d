"""Creating and importing users."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid
from app.users import service as users
from app.users.hashing import PasswordVerifier


async def test_upsert_creates_then_updates(session: AsyncSession) -> None:
    user, created = await users.upsert_user(
        session, username="bob", role="agent", password="pw-123456", extension="202"
    )
    assert created and user.extension == "202"
    user, created = await users.upsert_user(
        session, username="bob", role="supervisor", password=None, queues=["b", "a"]
    )
    assert not created and user.role == "supervisor" and user.queues == ["a", "b"]


async def test_bad_role_is_refused(session: AsyncSession) -> None:
    with pytest.raises(Invalid, match="role"):
        await users.upsert_user(session, username="x", role="boss", password="pw")


async def test_import_users_is_idempotent(session: AsyncSession, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text(
        "username,role,extension,queues,password\n"
        "carol,agent,203,sales;support,pw-carol\n"
        "dave,supervisor,,support,pw-dave\n"
    )
    assert await users.import_users(session, path) == (2, 0)
    assert await users.import_users(session, path) == (0, 2)
    carol = await users.get_by_username(session, "carol")
    assert carol is not None and carol.queues == ["sales", "support"]
    passwords = PasswordVerifier()
    try:
        authed = await users.authenticate(session, passwords, "dave", "pw-dave")
    finally:
        await passwords.close()
    assert authed.role == "supervisor"


async def test_import_reports_the_bad_line(session: AsyncSession, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("username,role,extension,queues,password\nerin,wizard,204,,pw\n")
    with pytest.raises(Invalid, match="line 2"):
        await users.import_users(session, path)
