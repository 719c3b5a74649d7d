"""The hot pool: asyncpg's own pool of plain connections for the event path (PostgreSQL only).

Connection arguments are the engine's own (``Dialect.create_connect_args``), JSON and JSONB
are decoded with orjson, and releasing a connection runs no query: asyncpg rolls back a
transaction left open, and our ``reset`` adds nothing (the event path sets no session state,
LISTENs to nothing and holds no advisory locks), where asyncpg's default reset sends one
statement per release. ``QueryLog`` is an asyncpg query logger the event store attaches while
someone listens (tests, ``bench.ingest_cpu --count``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

# Keyword arguments SQLAlchemy's asyncpg dialect accepts but asyncpg.connect does not.
_SQLALCHEMY_ONLY_ARGS = ("prepared_statement_cache_size", "prepared_statement_name_func")

# A pooled connection the database closed (restart, terminated backend) fails with one of
# these at its next statement.
HOT_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)

# ``asyncpg.Pool`` (asyncpg is not type-checked here).
HotPool: TypeAlias = Any


class QueryLog:
    """Who wants to see each statement the hot connections run (none, usually)."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[str], None]] = []

    def __call__(self, record: Any) -> None:
        for listener in self.listeners:
            listener(record.query)


async def _init_connection(conn: Any) -> None:
    """JSON and JSONB decoded by orjson, encoded from Python values."""

    def decode_jsonb(value: bytes) -> Any:
        return orjson.loads(value[1:])  # jsonb's binary format: a version byte, then text

    def encode_jsonb(value: Any) -> bytes:
        return b"\x01" + _json_bytes(value)

    await conn.set_type_codec(
        "json", encoder=_json_bytes, decoder=orjson.loads, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "jsonb", encoder=encode_jsonb, decoder=decode_jsonb, schema="pg_catalog", format="binary"
    )


def _json_bytes(value: Any) -> bytes:
    """A value bound to a JSON column: already-serialised text as it is, else orjson."""
    if isinstance(value, str):
        return value.encode()
    return orjson.dumps(value)


async def _reset(_conn: Any) -> None:
    """Nothing to reset beyond asyncpg's own rollback of an open transaction."""


async def create_hot_pool(
    engine: AsyncEngine,
    *,
    size: int,
    timeout_s: float,
    server_settings: Mapping[str, str] | None = None,
) -> HotPool | None:
    """The hot pool for ``engine``'s database, connections opened on demand up to ``size``;
    None for SQLite. ``server_settings`` are set on each connection (``synchronous_commit``)."""
    dialect = engine.dialect
    if dialect.name != "postgresql":
        return None
    args, kwargs = dialect.create_connect_args(engine.url)
    for key in _SQLALCHEMY_ONLY_ARGS:
        kwargs.pop(key, None)
    kwargs.setdefault("timeout", timeout_s)
    if server_settings:
        kwargs["server_settings"] = {**kwargs.get("server_settings", {}), **server_settings}
    pool: HotPool = await asyncpg.create_pool(
        *args, min_size=0, max_size=size, init=_init_connection, reset=_reset, **kwargs
    )
    return pool
