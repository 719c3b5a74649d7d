"""Helpers for the calls tests: signed generic events, an app with its state, tokens."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls.models import CallEventRecord
from app.calls.service import CallService
from app.main import create_app
from app.state import State
from app.users import security
from telephony.generic import sign_generic
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET, make_settings

GENERIC = "/telephony/generic/events"
_serial = itertools.count(1)


def new_call_id() -> str:
    return uuid.uuid4().hex[:12]


def event(call_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    """A generic webhook body with a fresh event id (pass ``event_id`` to repeat one)."""
    body: dict[str, Any] = {
        "event_id": f"{call_id}-{next(_serial)}",
        "call_id": call_id,
        "kind": kind,
        "caller": "+447700900123",
    }
    body.update(fields)
    return body


def signed(
    body: dict[str, Any] | bytes, secret: str = TEST_WEBHOOK_SECRET, t: int | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = int(time.time()) if t is None else t
    return raw, {
        "content-type": "application/json",
        "x-screenpop-signature": sign_generic(secret, raw, stamp),
    }


def token(username: str, role: str = "agent", ttl_s: int = 600) -> str:
    return security.issue_token(TEST_JWT_SECRET, username=username, role=role, ttl_s=ttl_s)


def bearer(username: str, role: str = "agent") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(username, role)}"}


@dataclass
class App:
    http: httpx.AsyncClient
    state: State

    @property
    def calls(self) -> CallService:
        service: CallService = self.state["services"]["calls"]
        return service

    async def post(self, body: dict[str, Any]) -> httpx.Response:
        """Post a signed generic event; return once background pop work has finished too."""
        raw, headers = signed(body)
        response = await self.http.post(GENERIC, content=raw, headers=headers)
        await self.calls.drain()
        return response


@asynccontextmanager
async def running_app(database_url: str, **overrides: Any) -> AsyncIterator[App]:
    """The app with its lifespan (caller cleans the database), and its state.

    The pop budget is generous unless a test sets it: a cold process's first queries can
    miss 50 ms, and then a ``pop.update`` follows the ``pop`` (tested on its own).
    """
    overrides.setdefault("pop_budget_ms", 5000)
    manager = LifespanManager(create_app(make_settings(database_url, **overrides)))
    async with manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield App(http, manager._state)  # type: ignore[arg-type]


async def journal_rows(engine: AsyncEngine) -> int:
    async with AsyncSession(engine) as session:
        return int(
            (await session.execute(select(func.count()).select_from(CallEventRecord))).scalar_one()
        )


# Every other connection to the test's database killed, as a database restart would.
TERMINATE_OTHERS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
