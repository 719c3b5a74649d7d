"""Fixtures for the live hub: a reachable Redis (or a clear skip) and a unique channel prefix."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from tests.support.own_redis import require_redis

REDIS_URL = os.environ.get("SCREENPOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
async def redis_url() -> AsyncIterator[str]:
    """The test Redis; skips (or fails with SCREENPOP_REQUIRE_REDIS=1) when unreachable."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        message = f"Redis not reachable at {REDIS_URL}: {exc!r}"
        if require_redis():
            pytest.fail(message + " (SCREENPOP_REQUIRE_REDIS=1)")
        pytest.skip(message)
    finally:
        await client.aclose()
    yield REDIS_URL


@pytest.fixture
async def redis_admin(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A separate client for poking at the server (CLIENT LIST / CLIENT KILL)."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    """Channels unique to this test, so parallel runs sharing one Redis never cross."""
    return f"screenpop-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
