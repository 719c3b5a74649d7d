"""Admins see the outbox over HTTP and can retry a message; nobody else can."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.sources import outbox
from app.sources.config import parse_config
from tests.conftest import add_user

CONFIG = parse_config('[destinations.crm]\nkind = "http"\nurl = "http://127.0.0.1:9/h"\n')


async def token(client: httpx.AsyncClient, engine: AsyncEngine, name: str, role: str) -> str:
    await add_user(engine, name, role=role, password="pw-for-" + name)
    response = await client.post(
        "/api/auth/login", json={"username": name, "password": "pw-for-" + name}
    )
    return str(response.json()["token"])


async def test_admins_list_and_retry_the_outbox(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    async with clean_engine.begin() as conn:
        [message_id] = await outbox.enqueue(conn, CONFIG, "wrapup", {"call_id": "generic:x"})
    admin = {"Authorization": f"Bearer {await token(client, clean_engine, 'ann', 'admin')}"}
    agent = {"Authorization": f"Bearer {await token(client, clean_engine, 'al', 'agent')}"}

    listed = await client.get("/api/outbox", headers=admin)
    assert listed.status_code == 200
    body = listed.json()
    assert body["counts"] == {"pending": 1, "delivered": 0, "failed": 0}
    assert [m["id"] for m in body["messages"]] == [message_id]
    assert body["messages"][0]["payload"]["data"]["call_id"] == "generic:x"

    assert (await client.get("/api/outbox", headers=agent)).status_code == 403
    assert (await client.get("/api/outbox?status=lost", headers=admin)).status_code == 422
    retried = await client.post(f"/api/outbox/{message_id}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    missing = await client.post("/api/outbox/msg_nope/retry", headers=admin)
    assert missing.status_code == 404 and "msg_nope" in missing.json()["detail"]
