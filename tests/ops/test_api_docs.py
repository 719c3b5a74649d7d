"""OpenAPI security schemes, local /docs and /redoc assets, and the AsyncAPI document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import connect

from app import migrate
from app.db import create_engine
from app.users import security
from app.users import service as users
from tests.conftest import TEST_JWT_SECRET
from tests.support.databases import sqlite_url
from tests.support.server import ServerProcess


async def test_openapi_marks_each_operation_with_its_scheme(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert (
        schemes["lookupApiKey"]["in"] == "header" and schemes["lookupApiKey"]["name"] == "X-API-Key"
    )
    paths = doc["paths"]
    assert paths["/api/queues"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/calls/{call_id}"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/telephony/lookup"]["get"]["security"] == [
        {"lookupApiKey": []},
        {"lookupApiKeyQuery": []},
    ]
    assert "security" not in paths["/healthz"]["get"]
    assert "security" not in paths["/api/auth/login"]["post"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_their_assets_from_the_app(
    client: httpx.AsyncClient, page: str
) -> None:
    html = (await client.get(page)).text
    assert "cdn." not in html and "fonts.googleapis" not in html
    assets = [
        part.split('"')[0]
        for part in html.split('src="')[1:] + html.split('href="')[1:]
        if part.startswith("/static/api-docs/")
    ]
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        response = await client.get(asset)
        assert response.status_code == 200 and len(response.content) > 100, asset


async def test_asyncapi_document_is_self_consistent(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/asyncapi.json")).json()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["screenpop"] == {"host": "test", "protocol": "ws"}
    assert {c["address"] for c in doc["channels"].values()} == {"/ws/agent", "/ws/supervisor"}

    def resolve(ref: str) -> Any:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    refs = [v for v in _walk(doc) if isinstance(v, str) and v.startswith("#/")]
    assert refs
    for ref in refs:
        assert resolve(ref) is not None, ref


def _walk(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [x for v in node.values() for x in _walk(v)]
    if isinstance(node, list):
        return [x for v in node for x in _walk(v)]
    return [node]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    """A real server on its own SQLite file, with an agent and a supervisor."""
    url = sqlite_url(tmp_path)
    await migrate.upgrade_async(url)
    engine = create_engine(url)
    async with AsyncSession(engine) as session:
        await users.upsert_user(
            session,
            username="ann",
            role="agent",
            password="pw-12345678",
            extension="201",
            queues=["sales"],
        )
        await users.upsert_user(
            session, username="sue", role="supervisor", password="pw-12345678", queues=["sales"]
        )
        await session.commit()
    await engine.dispose()
    env = {"SCREENPOP_DATABASE_URL": url, "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET}
    # A generous start: other suites may be loading this two-core machine.
    process = ServerProcess(env).start(timeout=90)
    try:
        yield process
    finally:
        process.stop()


def conforms(frame: dict[str, Any], doc: dict[str, Any], channel: str) -> bool:
    """``frame`` is one of the channel's messages: its type and every required field."""
    for ref in doc["channels"][channel]["messages"].values():
        payload = doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]["payload"]
        if payload["properties"]["type"]["const"] == frame["type"]:
            return set(payload["required"]) <= set(frame)
    return False


async def test_real_websocket_frames_match_the_asyncapi_document(server: ServerProcess) -> None:
    async with httpx.AsyncClient() as http:
        doc = (await http.get(server.url + "/asyncapi.json")).json()
    sue = security.issue_token(TEST_JWT_SECRET, username="sue", role="supervisor", ttl_s=60)
    async with connect(f"{server.ws_url}/ws/supervisor?token={sue}") as ws:
        snapshot = json.loads(await ws.recv())
    assert snapshot["type"] == "queues" and conforms(snapshot, doc, "supervisor")
    ann = security.issue_token(TEST_JWT_SECRET, username="ann", role="agent", ttl_s=60)
    async with connect(f"{server.ws_url}/ws/agent?token={ann}") as ws:
        await ws.send(json.dumps({"type": "dance"}))
        refused = json.loads(await ws.recv())
    assert refused["type"] == "error" and conforms(refused, doc, "agent")
    assert not conforms({"type": "pop"}, doc, "agent"), "a pop without its fields does not pass"
