"""The hot pool: plain asyncpg connections for the event path (PostgreSQL only).

Each event borrows one connection for a few statements. In an A/B at 200 events/s on a loaded
machine, asyncpg's own ``Pool`` (with a ``reset`` that sends nothing) answered 18-182 of ~750
events 503 (no connection free within 5 s) where this pool answered none. The likely cause, not
measured apart: asyncpg returns a released connection through a shielded task and an awaited
reset, so under overload it waits a pass of the event loop before a waiter gets it; this pool
hands it over at once. This pool is the part we need: a stack of idle
connections, opened lazily up to ``size``, handed straight to waiters on release; a wait only
when all are busy, bounded by ``timeout_s`` (then ``PoolExhausted``: the webhook answers 503).
Connections carry no session state (no SET, no LISTEN, no prepared names of ours), so they
are not reset; one closed by the server is dropped when it comes back or is picked.

Connection arguments are the engine's own (``create_connect_args``) and JSON columns get the
same codecs as SQLAlchemy's, so ``RawStatement`` bind and result processing is unchanged.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

# Keyword arguments SQLAlchemy's asyncpg dialect accepts but asyncpg.connect does not.
_SQLALCHEMY_ONLY_ARGS = ("prepared_statement_cache_size", "prepared_statement_name_func")
# A waiter woken with this opens a connection itself (a slot came free, not a connection).
_SLOT = object()


# A pooled connection the database closed (restart, terminated backend) fails with one of
# these at its next statement.
HOT_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)


class QueryLog:
    """An asyncpg query logger (public API) the event store attaches to a hot connection
    while someone listens (tests, ``bench.ingest_cpu --count``): asyncpg times and records
    every statement of a connection that has one, so it is not attached otherwise."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[str], None]] = []

    def __call__(self, record: Any) -> None:
        for listener in self.listeners:
            listener(record.query)


class PoolExhausted(Exception):
    """No connection came free within the pool's timeout."""


class HotPool:
    """At most ``size`` asyncpg connections from ``connect``, lent one at a time."""

    def __init__(
        self, connect: Callable[[], Awaitable[Any]], *, size: int, timeout_s: float
    ) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._connect = connect
        self.size = size
        self.timeout_s = timeout_s
        self._idle: list[Any] = []
        self._open = 0  # idle + lent + being opened
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._closed = False

    @property
    def idle(self) -> list[Any]:
        """The idle connections (most recently used last)."""
        return list(self._idle)

    async def acquire(self) -> Any:
        if self._closed:
            raise RuntimeError("the pool is closed")
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
            self._open -= 1
        if self._open < self.size:
            return await self._open_one()
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.timeout_s):
                got = await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                got = waiter.result()  # handed over as the clock ran out: keep it
            else:
                raise PoolExhausted(
                    f"no database connection free within {self.timeout_s:g} s"
                ) from None
        finally:
            if not waiter.done():
                waiter.cancel()
        if got is _SLOT:
            return await self._open_one(counted=True)
        return got

    async def _open_one(self, *, counted: bool = False) -> Any:
        if not counted:
            self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            self._pass_slot()
            raise

    def release(self, conn: Any) -> None:
        """Give ``conn`` back (a waiter gets it at once). A closed one frees its slot."""
        if conn.is_closed() or self._closed:
            if not conn.is_closed():
                conn.terminate()
            self._open -= 1
            self._pass_slot()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _pass_slot(self) -> None:
        while self._waiters and self._open < self.size:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(_SLOT)

    def expire(self) -> None:
        """Drop every idle connection (the database restarted); new ones open on demand."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.terminate()
            self._open -= 1
        self._pass_slot()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        await asyncio.gather(*(conn.close() for conn in idle), return_exceptions=True)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        self._waiters.clear()


async def _init_codecs(conn: Any) -> None:
    """JSON and JSONB as SQLAlchemy's asyncpg dialect sets them up (text in, decoded out)."""

    def decode_json(value: bytes) -> Any:
        return orjson.loads(value)

    def decode_jsonb(value: bytes) -> Any:
        return orjson.loads(value[1:])  # jsonb's binary format: a version byte, then text

    def encode_jsonb(value: str) -> bytes:
        return b"\x01" + value.encode()

    await conn.set_type_codec(
        "json", encoder=str.encode, decoder=decode_json, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "jsonb", encoder=encode_jsonb, decoder=decode_jsonb, schema="pg_catalog", format="binary"
    )


def create_hot_pool(
    engine: AsyncEngine,
    *,
    size: int,
    timeout_s: float,
    server_settings: Mapping[str, str] | None = None,
) -> HotPool | None:
    """The hot pool for ``engine``'s database; None for SQLite (it keeps the session path).
    ``server_settings`` are set on each connection (``synchronous_commit``, say)."""
    dialect = engine.dialect
    if dialect.name != "postgresql":
        return None
    args, kwargs = dialect.create_connect_args(engine.url)
    for key in _SQLALCHEMY_ONLY_ARGS:
        kwargs.pop(key, None)
    kwargs.setdefault("timeout", timeout_s)
    if server_settings:
        kwargs["server_settings"] = {**kwargs.get("server_settings", {}), **server_settings}

    async def connect() -> Any:
        conn = await asyncpg.connect(*args, **kwargs)
        try:
            await _init_codecs(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    return HotPool(connect, size=size, timeout_s=timeout_s)
