"""Fresh test databases: a SQLite file, or a new PostgreSQL database per test session."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import asyncpg
import pytest

PG_DSN = os.environ.get("SCREENPOP_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def require_postgres() -> bool:
    return os.environ.get("SCREENPOP_REQUIRE_POSTGRES") == "1"


async def create_pg_database() -> str:
    """Create an empty database and return its SQLAlchemy URL; skip (or fail) without a server."""
    name = f"screenpop_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL not reachable at {PG_DSN}: {exc}"
        if require_postgres():
            pytest.fail(message + " (SCREENPOP_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / f'screenpop-{uuid.uuid4().hex[:8]}.db'}"


def sqlite_file(url: str) -> Path:
    """The database file of a ``sqlite_url``."""
    return Path(url.split("///", 1)[1])


async def new_database(backend: str, tmp_dir: Path) -> str:
    if backend == "postgresql":
        return await create_pg_database()
    return sqlite_url(tmp_dir)


async def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        await drop_pg_database(url)
    elif url.startswith("sqlite"):
        sqlite_file(url).unlink(missing_ok=True)
