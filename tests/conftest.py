"""Shared fixtures: a fresh database per backend and session, rolled back around each test.

Every database test runs twice, on SQLite and on PostgreSQL. Without a reachable PostgreSQL
the PostgreSQL runs skip with a message, unless ``SCREENPOP_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app import migrate
from app.db import Base, create_engine
from app.main import create_app
from app.settings import Settings
from app.users import service as users
from tests.support.databases import drop_database, new_database

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEST_JWT_SECRET = "test-jwt-secret-that-is-long-enough-for-hs256"
TEST_WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture(autouse=True)
def _no_logging_to_closed_streams() -> Iterator[None]:
    """A command run through CliRunner configures logging on the runner's stream, which is
    closed after it: such handlers are removed after each test, or every later log line
    prints a "Logging error" traceback into the next command's output."""
    yield
    root = logging.getLogger()
    for handler in root.handlers[:]:
        if getattr(getattr(handler, "stream", None), "closed", False):
            root.removeHandler(handler)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated, empty database for this backend, dropped at the end of the session."""
    url = await new_database(backend, tmp_path_factory.mktemp("db"))
    await migrate.upgrade_async(url)
    yield url
    await drop_database(url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back after the test."""
    async with engine.connect() as conn:
        trans = await conn.begin()
        yield conn
        if trans.is_active:
            await trans.rollback()


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    factory = async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    async with factory() as sess:
        yield sess


async def truncate_all(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(delete(table))


@pytest.fixture
async def clean_engine(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """For tests whose code commits (servers, imports): every table emptied before and after."""
    await truncate_all(engine)
    yield engine
    await truncate_all(engine)


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "jwt_secret": TEST_JWT_SECRET,
        "webhook_secret": TEST_WEBHOOK_SECRET,
        "log_json": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def client(clean_engine: AsyncEngine, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app over real HTTP semantics (ASGI), with its lifespan, on a clean database."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


async def add_user(
    engine: AsyncEngine,
    username: str,
    role: str = "agent",
    password: str = "pw-" + "x" * 8,
    extension: str | None = None,
    queues: list[str] | None = None,
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as sess:
        await users.upsert_user(
            sess,
            username=username,
            role=role,
            password=password,
            extension=extension,
            queues=queues,
        )
        await sess.commit()
