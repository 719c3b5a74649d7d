"""``screenpop sources check``: ask every source's live parts once and show what they map to.

Unlike the pop path, nothing is skipped quietly: each part's rows, or its error, is reported,
so an operator can see a query or a mapping at fault before a caller does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from app.sources.config import SourcesConfig
from app.sources.fetchers import Fetcher, HttpFetcher, SqlFetcher
from app.sources.live import Caller
from app.sources.parts import shape


async def check_source(
    name: str, config: SourcesConfig, caller: Caller, http: httpx.AsyncClient
) -> dict[str, Any]:
    """``{"kind", "parts": {part: {"ms", "data"} | {"ms", "error"}}}`` for one source."""
    source = config.sources[name]
    fetcher: Fetcher = SqlFetcher(source) if source.kind == "sql" else HttpFetcher(source, http)
    parts: dict[str, Any] = {}
    ref = caller.refs.get(name)
    try:
        order = sorted(source.live, key=lambda p: p != "identity")
        for part in order:
            if source.needs_ref(part) and ref is None:
                parts[part] = {"skipped": "no :ref (identity found none)"}
                continue
            started = time.perf_counter()
            try:
                rows = await asyncio.wait_for(
                    fetcher.fetch(part, caller.params(ref)), source.timeout_ms / 1000
                )
            except Exception as exc:  # reported, not raised: check every part
                ms = round((time.perf_counter() - started) * 1000, 1)
                parts[part] = {"ms": ms, "error": f"{type(exc).__name__}: {exc}"}
                continue
            ms = round((time.perf_counter() - started) * 1000, 1)
            data = shape(part, rows)
            parts[part] = {"ms": ms, "within_budget": ms <= source.budget_ms, "data": data}
            if part == "identity" and isinstance(data, dict) and data.get("ref") is not None:
                ref = str(data["ref"])
        if isinstance(fetcher, SqlFetcher) and not source.live:
            started = time.perf_counter()
            await fetcher.rows("SELECT 1", {})
            parts["connect"] = {"ms": round((time.perf_counter() - started) * 1000, 1)}
    except Exception as exc:  # a source that cannot even connect
        parts["connect"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        await fetcher.close()
    return {"kind": source.kind, "parts": parts}


async def check_all(config: SourcesConfig, e164: str | None) -> dict[str, Any]:
    """Every source, checked one after another (timings are then each source's own)."""
    caller = Caller(e164)
    async with httpx.AsyncClient() as http:
        return {name: await check_source(name, config, caller, http) for name in config.ordered()}
