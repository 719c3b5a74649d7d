"""Live parts from the systems of record, asked at the call's first sight.

``LiveSources.start(key, caller)`` starts every configured source at once and returns a
``LiveFetch`` (the same one again for the same key: results are cached per call). Within a
source, parts that need the customer's reference in that source (``:ref``) wait for it: from
``caller.refs`` (what screenpop's database knows) or else from that source's own ``identity``
part. Each part is bounded by its source's ``timeout_ms``; a part that fails or times out is
left out (and counts against the source's circuit breaker); a source whose breaker is open is
skipped at once. Results are also cached briefly per set of parameters (``cache_s``), so a
customer who calls again within it costs the source nothing; a cached part keeps its
original ``as_of``.

The caller of ``LiveFetch`` decides what waits: ``within_budget()`` returns what arrived
while any missing part's source is still within its ``budget_ms`` (counted from the start),
and ``updates()`` yields the parts that arrive after that, for ``pop.update``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import phonenumbers

from app.sources.breaker import Breaker
from app.sources.config import SourcesConfig
from app.sources.fetchers import Fetcher, HttpFetcher, SqlFetcher
from app.sources.parts import Part, shape

log = logging.getLogger(__name__)
MAX_CALLS = 5000
MAX_CACHED = 20_000


@dataclass(frozen=True)
class Caller:
    """What a live query may be asked with: the number, an IVR reference, known refs."""

    e164: str | None
    account_ref: str | None = None
    refs: Mapping[str, str] = field(default_factory=dict)  # source name -> ref

    def params(self, ref: str | None = None) -> dict[str, Any]:
        """``:e164, :digits, :national, :last9, :ref, :account_ref`` for one source."""
        digits = (self.e164 or "").lstrip("+")
        national = None
        if self.e164:
            with contextlib.suppress(phonenumbers.NumberParseException):
                number = phonenumbers.parse(self.e164, None)
                national = "".join(
                    ch
                    for ch in phonenumbers.format_number(
                        number, phonenumbers.PhoneNumberFormat.NATIONAL
                    )
                    if ch.isdigit()
                )
        return {
            "e164": self.e164,
            "digits": digits or None,
            "national": national,
            "last9": digits[-9:] or None,
            "ref": ref,
            "account_ref": self.account_ref,
        }


class LiveFetch:
    """The live parts of one call, arriving concurrently."""

    def __init__(self, budgets: Mapping[str, float], clock: Callable[[], float]) -> None:
        self.started = clock()
        self.clock = clock
        self.parts: list[Part] = []
        self.budgets = budgets  # source -> seconds
        self.pending: set[str] = set(budgets)  # sources still running
        self._changed = asyncio.Event()
        self._given = 0
        self.tasks: list[asyncio.Task[None]] = []

    @property
    def done(self) -> bool:
        return not self.pending

    def _arrive(self, part: Part) -> None:
        self.parts.append(part)
        self._changed.set()

    def _finish(self, source: str) -> None:
        self.pending.discard(source)
        self._changed.set()

    def _deadline(self) -> float:
        return max((self.started + self.budgets[s] for s in self.pending), default=0.0)

    async def within_budget(self) -> list[Part]:
        """The parts that arrived while some missing source is still inside its budget."""
        while self.pending:
            remaining = self._deadline() - self.clock()
            if remaining <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        self._given = len(self.parts)
        return list(self.parts)

    async def updates(self) -> AsyncIterator[list[Part]]:
        """Every part so far, each time one arrives after ``within_budget``; ends when done."""
        while True:
            if len(self.parts) > self._given:
                self._given = len(self.parts)
                yield list(self.parts)
            if not self.pending:
                return
            self._changed.clear()
            if len(self.parts) == self._given and self.pending:
                await self._changed.wait()


class LiveSources:
    """Every configured source, their breakers and caches; built once per process."""

    def __init__(
        self,
        config: SourcesConfig,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.clock = clock
        self._http = http or httpx.AsyncClient(follow_redirects=False)
        self._own_http = http is None
        self.fetchers: dict[str, Fetcher] = {}
        self.breakers: dict[str, Breaker] = {}
        for name in config.ordered():
            source = config.sources[name]
            if not source.live:
                continue
            self.fetchers[name] = (
                SqlFetcher(source) if source.kind == "sql" else HttpFetcher(source, self._http)
            )
            self.breakers[name] = Breaker(
                source.breaker_failures, source.breaker_open_s, clock=clock
            )
        self._calls: OrderedDict[str, LiveFetch] = OrderedDict()
        self._cache: OrderedDict[tuple[Any, ...], tuple[float, Part | None]] = OrderedDict()

    def start(self, key: str, caller: Caller) -> LiveFetch:
        """Start (or return the already started) live fetch for one call."""
        found = self._calls.get(key)
        if found is not None:
            return found
        budgets = {n: self.config.sources[n].budget_ms / 1000 for n in self.fetchers}
        fetch = LiveFetch(budgets, self.clock)
        for name in self.fetchers:
            task = asyncio.create_task(self._run_source(fetch, name, caller), name=f"live-{name}")
            fetch.tasks.append(task)
        self._calls[key] = fetch
        while len(self._calls) > MAX_CALLS:
            self._calls.popitem(last=False)
        return fetch

    def forget(self, key: str) -> None:
        """Drop a call's cached results (the call is over)."""
        self._calls.pop(key, None)

    async def _run_source(self, fetch: LiveFetch, name: str, caller: Caller) -> None:
        try:
            source = self.config.sources[name]
            ref = caller.refs.get(name)
            first = [p for p in source.live if not source.needs_ref(p) or ref is not None]
            later = [p for p in source.live if p not in first]
            if later and "identity" in first:
                # The ref-dependent parts wait for this source's identity to name the ref.
                identity = await self._part(name, "identity", caller.params(ref))
                if identity is not None:
                    fetch._arrive(identity)
                    if isinstance(identity.data, dict) and identity.data.get("ref") is not None:
                        ref = str(identity.data["ref"])
                first.remove("identity")
            batch = first + (later if ref is not None else [])
            params = caller.params(ref)
            results = await asyncio.gather(*(self._part(name, p, params) for p in batch))
            for part in results:
                if part is not None:
                    fetch._arrive(part)
        except Exception:  # one source's failure never fails the pop
            log.exception("live source %s failed", name)
        finally:
            fetch._finish(name)

    async def _part(self, name: str, part: str, params: Mapping[str, Any]) -> Part | None:
        """One part from one source: cached, or fetched within the timeout and breaker."""
        source = self.config.sources[name]
        key = (name, part, tuple(sorted((k, v) for k, v in params.items() if v is not None)))
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        breaker = self.breakers[name]
        if not breaker.allow():
            return None
        try:
            rows = await asyncio.wait_for(
                self.fetchers[name].fetch(part, params), source.timeout_ms / 1000
            )
        except Exception as exc:
            breaker.failure()
            log.warning("live source %s part %s: %s", name, part, type(exc).__name__ or exc)
            return None
        breaker.success()
        data = shape(part, rows)
        result = None if data is None else Part(part, name, datetime.now(UTC), data)
        if source.cache_s > 0:
            self._cache[key] = (now + source.cache_s, result)
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return result

    async def close(self) -> None:
        for fetch in self._calls.values():
            for task in fetch.tasks:
                task.cancel()
        for fetcher in self.fetchers.values():
            await fetcher.close()
        if self._own_http:
            await self._http.aclose()
