"""``/metrics``: process, GC, HTTP, pool, Redis and webhook families; several workers summed."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app import migrate
from app.main import create_app
from tests.calls.support import event, new_call_id, signed
from tests.conftest import make_settings
from tests.support.databases import sqlite_url
from tests.support.server import ServerProcess

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "screenpop.json"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


async def test_metrics_show_process_http_pool_and_webhook_outcomes(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    assert (await client.get("/healthz")).status_code == 200
    raw, headers = signed(event(new_call_id(), "queued", queue="sales"))
    assert (
        await client.post("/telephony/generic/events", content=raw, headers=headers)
    ).status_code == 202
    headers["x-screenpop-signature"] = "t=1,v1=00"
    assert (
        await client.post("/telephony/generic/events", content=raw, headers=headers)
    ).status_code == 401
    text = (await client.get("/metrics")).text
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "python_gc_objects_collected",
    } <= names
    assert (
        value(text, "screenpop_http_requests_total", method="GET", route="/healthz", status="200")
        == 1
    )
    route = "/telephony/{provider}/events"
    assert (
        value(text, "screenpop_http_requests_total", method="POST", route=route, status="202") == 1
    )
    assert (
        value(text, "screenpop_http_request_duration_seconds_count", method="GET", route="/healthz")
        == 1
    )
    assert (
        value(text, "screenpop_webhook_requests_total", provider="generic", outcome="accepted") == 1
    )
    assert (
        value(text, "screenpop_webhook_requests_total", provider="generic", outcome="unauthorized")
        == 1
    )
    size = value(text, "screenpop_db_pool_connections", state="size")
    if isinstance(engine.sync_engine.pool, QueuePool):  # not for aiosqlite on older SQLAlchemy
        assert size is not None and size >= 1
    else:
        assert size is None
    assert value(text, "screenpop_hub_subscribers") == 0


async def test_wallboard_figures_follow_the_queue(client: httpx.AsyncClient) -> None:
    raw, headers = signed(event(new_call_id(), "queued", queue="wallboard-q"))
    assert (
        await client.post("/telephony/generic/events", content=raw, headers=headers)
    ).status_code == 202
    for _ in range(100):  # the queue statistics fold the call's hub message
        text = (await client.get("/metrics")).text
        if value(text, "screenpop_queue", queue="wallboard-q", figure="waiting"):
            break
        await asyncio.sleep(0.05)
    assert value(text, "screenpop_queue", queue="wallboard-q", figure="waiting") == 1
    assert value(text, "screenpop_queue", queue="wallboard-q", figure="offered") is not None
    assert value(text, "screenpop_agents", state="available") is not None


async def test_the_grafana_dashboard_only_asks_for_metrics_that_exist(
    client: httpx.AsyncClient,
) -> None:
    text = (await client.get("/metrics")).text
    exposed = set()
    for family in text_string_to_metric_families(text):
        exposed |= {family.name + suffix for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    asked = {m for e in exprs for m in re.findall(r"\b((?:screenpop|process|python)_[a-z_]+)", e)}
    assert len(asked) > 15
    assert asked <= exposed, asked - exposed


async def test_unmatched_paths_do_not_become_labels(client: httpx.AsyncClient) -> None:
    for n in range(3):
        assert (await client.get(f"/probe/{n}")).status_code == 404
    text = (await client.get("/metrics")).text
    assert (
        value(text, "screenpop_http_requests_total", method="GET", route="unmatched", status="404")
        == 3
    )
    assert "/probe/" not in text


async def test_redis_gauges_follow_the_hub(database_url: str, redis_url: str) -> None:
    app = create_app(make_settings(database_url, redis_url=redis_url))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            for _ in range(100):  # the sampler's first PING runs as the app starts
                text = (await http.get("/metrics")).text
                if value(text, "screenpop_redis_ping_seconds"):
                    break
                await asyncio.sleep(0.05)
    assert value(text, "screenpop_redis_connected") == 1
    ping = value(text, "screenpop_redis_ping_seconds")
    assert ping is not None and ping > 0


def test_several_workers_are_summed_in_one_scrape(redis_url: str, tmp_path: Path) -> None:
    """``serve --workers 2``: whichever worker answers the scrape counts both workers' requests.

    Not a database test: one SQLite file, so it runs once.
    """
    folder = tmp_path / "prom"
    folder.mkdir()
    database_url = sqlite_url(tmp_path)
    migrate.upgrade(database_url)
    env = {
        "SCREENPOP_DATABASE_URL": database_url,
        "SCREENPOP_REDIS_URL": redis_url,
        "SCREENPOP_JWT_SECRET": "x" * 40,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    sent = 0
    # Two workers import the whole app at once: slow on a busy two-core machine.
    server = ServerProcess(env, args=("--workers", "2")).start(timeout=120)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # A new connection each time, so the kernel may hand it to either worker.
            assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
            sent += 1
            pids = {p.stem.rsplit("_", 1)[1] for p in folder.glob("counter_*.db")}
            if len(pids) >= 2 and sent >= 10:
                break
        assert len(pids) >= 2, "both workers should have answered some request"
        text = httpx.get(server.url + "/metrics", timeout=5).text
    finally:
        server.stop()
    assert (
        value(text, "screenpop_http_requests_total", method="GET", route="/healthz", status="200")
        == sent
    )
