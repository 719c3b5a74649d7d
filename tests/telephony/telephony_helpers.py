"""Shared helpers for the telephony tests: fixtures on disk and request building.

(A plain module, not conftest.py, so its name cannot clash with other test packages.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from telephony.base import WebhookRequest

FIXTURES = Path(__file__).parent / "fixtures"
PUBLIC_URL = "https://screenpop.example.com"
NOW = datetime(2025, 5, 1, 9, 0, 30, tzinfo=UTC)


def fixture_json(name: str) -> dict[str, Any]:
    """A JSON fixture as a dict."""
    data = json.loads((FIXTURES / name).read_text())
    assert isinstance(data, dict)
    return data


def fixture_bytes(name: str) -> bytes:
    """A fixture's raw bytes."""
    return (FIXTURES / name).read_bytes()


def make_request(
    path: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    content_type: str | None = None,
    received_at: datetime = NOW,
) -> WebhookRequest:
    """A ``WebhookRequest`` the way the app builds one (public URL + path + query)."""
    query = dict(query or {})
    url = PUBLIC_URL + path + (("?" + urlencode(query)) if query else "")
    hdrs = {k.lower(): v for k, v in (headers or {}).items()}
    if content_type is not None:
        hdrs["content-type"] = content_type
    return WebhookRequest(
        method=method,
        url=url,
        path=urlsplit(url).path,
        query=query,
        headers=hdrs,
        body=body,
        received_at=received_at,
    )


def form_body(fields: Mapping[str, str]) -> bytes:
    """URL-encode form fields the way providers post them."""
    return urlencode(fields).encode("ascii")


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``condition()`` holds (polling), or fail the test."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class ScriptedPeer:
    """A TCP server on 127.0.0.1 that a test drives line by line; can be killed and restarted."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.logins: list[dict[str, str]] = []
        self.received: list[str] = []

    async def start(self) -> ScriptedPeer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def send(self, data: bytes) -> None:
        """Send raw bytes to the (latest) connected client."""
        writer = self.writers[-1]
        writer.write(data)
        await writer.drain()

    async def kill(self) -> None:
        """Stop listening and drop every connection, like a PBX restart."""
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()
