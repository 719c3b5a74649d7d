"""Samples what lives outside the process into gauges: the database pool and Redis.

Sampled every few seconds by a task of the lifespan (so every worker's figures stay current
in multiprocess mode) and once more at each scrape of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis import asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.pool import QueuePool

from app.state import State

log = logging.getLogger(__name__)

SAMPLE_EVERY_S = 5.0


def sample_local(state: State) -> None:
    """The pool and hub figures (no I/O)."""
    metrics = state["metrics"]
    pool = state["engine"].sync_engine.pool
    if isinstance(pool, QueuePool):
        metrics.db_pool.labels(state="size").set(pool.size())
        metrics.db_pool.labels(state="checked_out").set(pool.checkedout())
        metrics.db_pool.labels(state="idle").set(pool.checkedin())
        metrics.db_pool.labels(state="overflow").set(max(pool.overflow(), 0))
    hub = state["hub"]
    metrics.hub_subscribers.set(hub.subscriber_count())
    if state["settings"].redis_url:
        metrics.redis_connected.set(1 if hub.connected else 0)


async def ping_redis(state: State, client: aioredis.Redis) -> None:
    started = time.perf_counter()
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        log.debug("redis ping failed", extra={"error": repr(exc)})
        state["metrics"].redis_connected.set(0)
        return
    state["metrics"].redis_ping.set(time.perf_counter() - started)


async def run(state: State, every_s: float = SAMPLE_EVERY_S) -> None:
    """Sample until cancelled."""
    url = state["settings"].redis_url
    client = (
        aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) if url else None
    )
    try:
        while True:
            sample_local(state)
            if client is not None:
                await ping_redis(state, client)
            await asyncio.sleep(every_s)
    finally:
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()


def start(state: State) -> asyncio.Task[None]:
    return asyncio.create_task(run(state), name="dependency-gauges")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
