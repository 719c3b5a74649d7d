"""Asking one source for one part: SQL queries and HTTP requests, rows as plain JSON values.

A fetcher returns the rows a live part's query gives (``list[dict]``), each value JSON-ready:
numbers as ``int``/``float``, times as ISO 8601 strings (a naive database time is read as
UTC), everything else as the driver or the response gave it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import jmespath
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.sources.config import HttpQuery, Source, sql_parameters, url_parameters


class SourceError(Exception):
    """A source answered with something we cannot use (HTTP error status, not JSON, ...)."""


class Fetcher(Protocol):
    async def fetch(self, part: str, params: Mapping[str, Any]) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


def plain(value: Any) -> Any:
    """A database or JSON value as JSON: Decimal -> float, times -> ISO 8601 (UTC if naive)."""
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def source_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    """An engine for a source's database: small pool, connections checked before use."""
    if url.startswith("sqlite"):
        return create_async_engine(url)
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800
    )


class SqlFetcher:
    """A ``sql`` source: each live part is the operator's query with named parameters."""

    def __init__(self, source: Source, engine: AsyncEngine | None = None) -> None:
        assert source.url is not None
        self.source = source
        self.engine = engine or source_engine(source.url)

    async def fetch(self, part: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        query = self.source.live[part]
        assert isinstance(query, str)
        return await self.rows(query, params)

    async def rows(self, query: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        used = {name: params.get(name) for name in sql_parameters(query)}
        async with self.engine.connect() as conn:
            result = await conn.execute(text(query), used)
            return [{k: plain(v) for k, v in row.items()} for row in result.mappings()]

    async def close(self) -> None:
        await self.engine.dispose()


def fill_url(template: str, params: Mapping[str, Any]) -> str:
    """A URL template with ``{name}`` replaced by the URL-encoded parameter ("" when None)."""
    out = template
    for name in url_parameters(template):
        value = params.get(name)
        out = out.replace("{" + name + "}", quote("" if value is None else str(value), safe=""))
    return out


def map_response(query: HttpQuery, document: Any) -> list[dict[str, Any]]:
    """Rows from a JSON response: ``items`` selects a list (one row per element), ``map``
    gives each column; a row whose every column is null is dropped."""
    if query.items is not None:
        found = jmespath.search(query.items, document)
        elements = found if isinstance(found, list) else ([] if found is None else [found])
    else:
        elements = [document]
    rows = []
    for element in elements:
        row = {col: plain(jmespath.search(expr, element)) for col, expr in query.map.items()}
        if any(v is not None for v in row.values()):
            rows.append(row)
    return rows


class HttpFetcher:
    """An ``http`` source: each live part is a GET of a URL template, mapped by JMESPath."""

    def __init__(self, source: Source, client: httpx.AsyncClient) -> None:
        self.source = source
        self.client = client

    async def fetch(self, part: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        query = self.source.live[part]
        assert isinstance(query, HttpQuery)
        response = await self.client.get(
            fill_url(query.url, params),
            headers={"Accept": "application/json", **self.source.headers},
            timeout=self.source.timeout_ms / 1000,
        )
        if response.status_code == 404:
            return []
        if response.status_code >= 400:
            raise SourceError(f"HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise SourceError("the response is not JSON") from None
        return map_response(query, document)

    async def close(self) -> None:
        """The client is shared and closed by its owner."""
