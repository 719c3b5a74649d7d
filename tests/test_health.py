"""Liveness, readiness (including a database that is down) and metrics."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

from app.main import create_app
from tests.conftest import make_settings


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"
    assert ready.headers["x-request-id"]


async def test_readyz_reports_a_database_that_is_down() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    settings = make_settings("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            ready = await http.get("/readyz")
            assert (await http.get("/healthz")).status_code == 200
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
