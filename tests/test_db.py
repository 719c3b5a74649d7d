"""app/db.py: a pooled PostgreSQL connection that died while idle is replaced, not an error."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app import db


async def test_a_connection_killed_while_idle_is_replaced_on_checkout(
    database_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no server connections to lose")
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    engine = db.create_engine(database_url, pool_size=1)
    other = db.create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        # The pooled connection dies while idle (a database restart, a proxy's timeout).
        async with other.connect() as conn:
            killed = await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert killed.scalar_one() is True
        async with engine.connect() as conn:
            fresh = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert fresh != pid
    finally:
        await engine.dispose()
        await other.dispose()
