"""Revocation: a real uvicorn re-reads the users every 0.3 s; tokens and open websockets of a
deactivated or demoted user stop working (app/users/access.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.users.models import User
from tests.calls.support import token
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET, add_user, truncate_all
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
async def server(engine: AsyncEngine, database_url: str) -> AsyncIterator[ServerProcess]:
    await truncate_all(engine)
    await add_user(engine, "amy", "agent", queues=["sales"])
    await add_user(engine, "sam", "supervisor", queues=["sales"])
    proc = ServerProcess(
        {
            "SCREENPOP_DATABASE_URL": database_url,
            "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
            "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
            "SCREENPOP_LOG_JSON": "false",
            "SCREENPOP_USERS_REFRESH_S": "0.3",
        }
    )
    await asyncio.to_thread(proc.start)
    try:
        yield proc
    finally:
        await asyncio.to_thread(proc.stop)
        await truncate_all(engine)


async def set_user(engine: AsyncEngine, username: str, **values: object) -> None:
    async with AsyncSession(engine) as session:
        await session.execute(update(User).where(User.username == username).values(**values))
        await session.commit()


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """Read (and ignore) frames until the server closes; its close code and reason."""
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(20):
            while True:
                await ws.recv()
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


async def test_a_deactivated_agent_is_refused_and_their_websocket_closed_4401(
    server: ServerProcess, engine: AsyncEngine
) -> None:
    headers = {"Authorization": f"Bearer {token('amy')}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        assert (await http.get("/api/auth/me", headers=headers)).status_code == 200
        async with connect(f"{server.ws_url}/ws/agent?token={token('amy')}") as ws:
            await set_user(engine, "amy", active=False)
            code, reason = await closed_with(ws)
        assert (code, reason) == (4401, "unauthorized: user deactivated")
        refused = await http.get("/api/auth/me", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["detail"] == "user deactivated"
        async with connect(f"{server.ws_url}/ws/agent?token={token('amy')}") as ws:
            assert (await closed_with(ws))[0] == 4401


async def test_a_demoted_supervisor_loses_supervisor_endpoints_and_the_wallboard(
    server: ServerProcess, engine: AsyncEngine
) -> None:
    headers = {"Authorization": f"Bearer {token('sam', 'supervisor')}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        assert (await http.get("/api/calls", headers=headers)).status_code == 200
        url = f"{server.ws_url}/ws/supervisor?token={token('sam', 'supervisor')}"
        async with connect(url) as ws:
            await ws.recv()  # the first snapshot: the connection is in the pump
            await set_user(engine, "sam", role="agent")
            code, reason = await closed_with(ws)
        assert code == 4403 and "supervisor role required" in reason
        demoted = await http.get("/api/calls", headers=headers)
        assert demoted.status_code == 403
        me = await http.get("/api/auth/me", headers=headers)
        assert me.json() == {"username": "sam", "role": "agent"}
