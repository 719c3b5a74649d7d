"""Shared helpers for the telephony tests: fixtures on disk and request building.

(A plain module, not conftest.py, so its name cannot clash with other test packages.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
