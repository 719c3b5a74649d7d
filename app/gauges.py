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

from app.queues.presence import PRESENCE_STATES
from app.state import State

log = logging.getLogger(__name__)

SAMPLE_EVERY_S = 5.0


QUEUE_FIGURES = (
    "longest_wait_s",
    "offered",
    "answered",
    "abandoned",
    "service_level",
    "asa_s",
    "aht_s",
)
HEALTH_FIGURES = ("match_rate", "multi_match_rate", "unmatched", "pop_p50_ms", "pop_p95_ms")


def sample_wallboard(state: State) -> None:
    """Today's queue, agent and pop-health figures, as the supervisors' wallboard shows them."""
    runtime = state["services"].get("queues_runtime")
    if runtime is None:
        return
    snapshot = runtime.stats.snapshot()
    metrics = state["metrics"]
    for row in snapshot["queues"]:
        metrics.queue_figure.labels(queue=row["name"], figure="waiting").set(len(row["waiting"]))
        for figure in QUEUE_FIGURES:
            if row.get(figure) is not None:
                metrics.queue_figure.labels(queue=row["name"], figure=figure).set(row[figure])
    states = dict.fromkeys(PRESENCE_STATES, 0)
    for agent in snapshot["agents"]:
        states[agent["state"]] = states.get(agent["state"], 0) + 1
    for name, n in states.items():
        metrics.agents_by_state.labels(state=name).set(n)
    for figure in HEALTH_FIGURES:
        value = snapshot["pop_health"].get(figure)
        if value is not None:
            metrics.pop_health.labels(figure=figure).set(value)


def sample_local(state: State) -> None:
    """The pool, hub and wallboard figures (no I/O)."""
    sample_wallboard(state)
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
