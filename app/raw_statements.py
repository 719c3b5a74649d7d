"""Hot statements compiled once by SQLAlchemy and run straight on an asyncpg connection.

SQLAlchemy's session and execution layers cost more CPU per event than the queries
themselves on the pop path (a greenlet hop, cursor and result objects per statement). A
``RawStatement`` is a Core statement compiled once for PostgreSQL; it runs on an asyncpg
connection with SQLAlchemy's own bind and result processing (UTC check, JSON, numerics) and
asyncpg's prepared-statement cache. Everything used is public API: ``Compiled.string``,
``positiontup``, ``binds``, ``TypeEngine.dialect_impl`` and its processors, and a session's
``AdaptedConnection.driver_connection``. SQLite keeps the ordinary SQLAlchemy path.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from app.hot_pool import HOT_CONNECTION_ERRORS as DRIVER_CONNECTION_ERRORS


class RawStatement:
    """A Core statement, compiled once per dialect and set of parameter keys.

    ``column_keys`` statements (INSERT/UPDATE whose columns come from the parameters) compile
    once per set of keys; when a key set needs Python-side column defaults or expanding
    parameters, ``prepare`` answers None and the caller takes SQLAlchemy's path.
    """

    __slots__ = ("_compiled", "stmt")

    def __init__(self, stmt: Any) -> None:
        self.stmt = stmt
        self._compiled: dict[frozenset[str] | None, Compiled | None] = {}

    def prepare(self, dialect: Dialect, keys: frozenset[str] | None = None) -> Compiled | None:
        found = self._compiled.get(keys, self)
        if found is self:
            found = self._compiled[keys] = Compiled.build(self.stmt, dialect, keys)
        return cast("Compiled | None", found)


class Compiled:
    __slots__ = ("defaults", "dialect", "keys", "names", "procs", "result_procs", "row_type",
                 "sql", "types")  # fmt: skip

    def __init__(
        self,
        sql: str,
        names: list[str],
        procs: list[Callable[[Any], Any] | None],
        defaults: dict[str, Any],
        columns: list[tuple[str, Any]],
        dialect: Dialect,
    ) -> None:
        self.sql = sql
        self.names = names
        self.procs = procs
        self.defaults = defaults
        self.keys = [key for key, _ in columns]
        self.types = [type_ for _, type_ in columns]
        self.dialect = dialect
        # Result processors depend on the column's PostgreSQL type (numeric vs float8): read
        # from the prepared statement at its first run.
        self.result_procs: list[Callable[[Any], Any] | None] | None = None
        self.row_type: Any = namedtuple("Row", self.keys) if self.keys else None  # type: ignore[misc]

    @classmethod
    def build(cls, stmt: Any, dialect: Dialect, keys: frozenset[str] | None) -> Compiled | None:
        compiled: Any = stmt.compile(
            dialect=dialect, column_keys=sorted(keys) if keys is not None else None
        )
        binds = compiled.binds
        if compiled.insert_prefetch or compiled.update_prefetch:
            return None  # Python-side column defaults: SQLAlchemy's job
        if any(bind.expanding for bind in binds.values()):
            return None  # IN (...) lists: SQLAlchemy's job
        names = list(compiled.positiontup or ())
        procs = [binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
        defaults = {key: bind.effective_value for key, bind in binds.items()}
        returns = getattr(stmt, "exported_columns", ())
        # An unlabelled expression has no key: read by position.
        columns = [(column.key or f"c{i}", column.type) for i, column in enumerate(returns)]
        return cls(compiled.string, names, procs, defaults, columns, dialect)

    async def _result_procs(self, conn: Any) -> list[Callable[[Any], Any] | None]:
        if self.result_procs is None:
            attributes = (await conn.prepare(self.sql)).get_attributes()
            self.result_procs = [
                type_.dialect_impl(self.dialect).result_processor(self.dialect, attribute.type.oid)
                for type_, attribute in zip(self.types, attributes, strict=True)
            ]
        return self.result_procs

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        defaults = self.defaults
        out = []
        for name, proc in zip(self.names, self.procs, strict=True):
            value = params[name] if name in params else defaults[name]
            # None goes through the processor too, as in SQLAlchemy (JSON None is 'null').
            out.append(proc(value) if proc is not None else value)
        return out

    async def fetch(self, conn: Any, params: Mapping[str, Any]) -> list[Any]:
        """Rows as lists of processed values, in column order, from asyncpg ``conn``."""
        procs = await self._result_procs(conn)
        records = await conn.fetch(self.sql, *self.args(params))
        return [
            [proc(v) if proc is not None else v for v, proc in zip(r, procs, strict=True)]
            for r in records
        ]

    async def dicts(self, conn: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        keys = self.keys
        return [dict(zip(keys, v, strict=True)) for v in await self.fetch(conn, params)]

    async def rows(self, conn: Any, params: Mapping[str, Any]) -> list[Any]:
        """Rows read by attribute, like SQLAlchemy's."""
        make = self.row_type._make
        return [make(v) for v in await self.fetch(conn, params)]

    async def execute(self, conn: Any, params: Mapping[str, Any]) -> str:
        """Run it for its effect; asyncpg's status (``"UPDATE 1"``)."""
        return str(await conn.execute(self.sql, *self.args(params)))


async def _read_raw(
    session: AsyncSession, compiled: Compiled, params: Mapping[str, Any]
) -> list[Any]:
    """Run a read on the asyncpg connection under the session.

    Outside a transaction the statement runs on its own (autocommit), inside one as part of
    it: raw statements run through a session are reads. Engine and connection listeners see
    the statement (``before_cursor_execute``), as they would through SQLAlchemy. A connection
    the database dropped is invalidated, and the engine's pool with it (a restart drops them
    all), before the error goes on.
    """
    connection = await session.connection()
    sync_connection = connection.sync_connection
    assert sync_connection is not None
    sync_connection.dispatch.before_cursor_execute(
        sync_connection, None, compiled.sql, params, None, False
    )
    raw = await connection.get_raw_connection()
    try:
        return await compiled.rows(raw.driver_connection, params)
    except DRIVER_CONNECTION_ERRORS as exc:
        await connection.invalidate(exc)
        await connection.engine.dispose(close=False)
        raise


# The asyncpg connection raw reads run on instead of the session's own (``reads_on``).
_READS_ON: ContextVar[Any] = ContextVar("screenpop_reads_on", default=None)


@contextmanager
def reads_on(conn: Any) -> Iterator[None]:
    """Within this block, raw reads made through any session run on ``conn``, an asyncpg
    connection the caller holds: the event path reads where it writes, so an event whose
    reads are all raw takes no connection from the engine's pool. Reads only: writes go
    through the session (inside its transaction) or straight on ``conn`` by its owner."""
    token = _READS_ON.set(conn)
    try:
        yield
    finally:
        _READS_ON.reset(token)


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def raw_rows(
    session: AsyncSession, raw: RawStatement, params: Mapping[str, Any]
) -> list[Any] | None:
    """Rows with attribute access (like SQLAlchemy's), or None: run it through SQLAlchemy."""
    if not is_postgresql(session):
        return None
    compiled = raw.prepare(session.get_bind().dialect)
    if compiled is None:
        return None
    conn = _READS_ON.get()
    if conn is not None:
        return await compiled.rows(conn, params)
    return await _read_raw(session, compiled, params)


async def fetch_rows(
    session: AsyncSession, raw: RawStatement, params: Mapping[str, Any]
) -> Sequence[Any]:
    """``raw_rows``, else the same statement through SQLAlchemy (SQLite)."""
    rows = await raw_rows(session, raw, params)
    if rows is not None:
        return rows
    return (await session.execute(raw.stmt, params)).all()
