"""Liveness, readiness (including a database that is down) and metrics."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

from app import migrate
from app.main import create_app
from tests.conftest import make_settings
from tests.support.databases import create_pg_database, drop_pg_database


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"
    assert ready.headers["x-request-id"]


async def test_readyz_reports_a_database_that_goes_down() -> None:
    """A running instance whose PostgreSQL database disappears answers 503, and stays alive."""
    url = await create_pg_database()
    await migrate.upgrade_async(url)
    app = create_app(make_settings(url))
    try:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                assert (await http.get("/readyz")).status_code == 200
                await drop_pg_database(url)
                ready = await http.get("/readyz")
                assert (await http.get("/healthz")).status_code == 200
    finally:
        await drop_pg_database(url)
    assert ready.status_code == 503
    assert ready.json()["error"] == "database_unavailable"


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "screenpop_call_events_total" in response.text
    assert response.headers["content-type"].startswith("text/plain")


async def test_unknown_path_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
