"""Hot statements run straight on asyncpg, inside the session's own transaction.

SQLAlchemy's session and execution layers cost more CPU per event than the queries
themselves on the pop path; a ``RawStatement`` is compiled once and executed on the
session's asyncpg connection, so commit, rollback and journal-first semantics are unchanged.
SQLite keeps the ordinary SQLAlchemy path.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession


class RawStatement:
    """A Core statement compiled once for asyncpg and run on the session's own connection.

    Same SQL and the same bind/result processing as SQLAlchemy's (UTC check, JSON, numerics),
    but without its execution layer (a greenlet hop, cursor and result objects per statement,
    ~55 % of the ingest CPU): asyncpg runs it with its prepared-statement cache, inside the
    transaction the session began, so commit and rollback are unchanged. PostgreSQL only.
    ``column_keys`` statements (INSERT/UPDATE whose columns come from the parameters) compile
    once per set of keys; when a key set needs Python-side column defaults, ``prepare``
    answers None and the caller takes SQLAlchemy's path.
    """

    __slots__ = ("_compiled", "stmt")

    def __init__(self, stmt: Any) -> None:
        self.stmt = stmt
        self._compiled: dict[frozenset[str] | None, _Compiled | None] = {}

    def prepare(self, dialect: Dialect, keys: frozenset[str] | None = None) -> _Compiled | None:
        found = self._compiled.get(keys, self)
        if found is self:
            found = self._compiled[keys] = _Compiled.build(self.stmt, dialect, keys)
        return cast("_Compiled | None", found)


class _Compiled:
    __slots__ = (
        "defaults",
        "dialect",
        "keys",
        "names",
        "procs",
        "result_procs",
        "row_type",
        "sql",
        "types",
    )

    def __init__(
        self,
        sql: str,
        names: list[str],
        procs: list[Callable[[Any], Any] | None],
        defaults: dict[str, Any],
        keys: list[str],
        types: list[Any],
        dialect: Dialect,
    ) -> None:
        self.sql = sql
        self.names = names
        self.procs = procs
        self.defaults = defaults
        self.keys = keys
        self.types = types
        self.dialect = dialect
        # Result processors depend on the column's PostgreSQL type (numeric vs float8): read
        # from the prepared statement at its first run.
        self.result_procs: list[Callable[[Any], Any] | None] | None = None
        self.row_type: Any = namedtuple("Row", keys) if keys else None  # type: ignore[misc]

    @classmethod
    def build(cls, stmt: Any, dialect: Dialect, keys: frozenset[str] | None) -> _Compiled | None:
        compiled: Any = stmt.compile(
            dialect=dialect, column_keys=sorted(keys) if keys is not None else None
        )
        expanding = any(b.expanding for b in compiled.binds.values())
        if compiled.insert_prefetch or compiled.update_prefetch or expanding:
            return None  # Python-side defaults or expanding parameters: SQLAlchemy's job
        names = list(compiled.positiontup or ())
        bind_procs = compiled._bind_processors
        result_columns = compiled._result_columns
        return cls(
            compiled.string,
            names,
            [bind_procs.get(n) for n in names],
            compiled.construct_params(_check=False),
            [rc[0] for rc in result_columns],
            [rc[3] for rc in result_columns],
            dialect,
        )

    async def _result_procs(self, conn: Any) -> list[Callable[[Any], Any] | None]:
        if self.result_procs is None:
            attributes = (await conn.prepare(self.sql)).get_attributes()
            self.result_procs = [
                type_._cached_result_processor(self.dialect, attribute.type.oid)
                for type_, attribute in zip(self.types, attributes, strict=True)
            ]
        return self.result_procs

    async def fetch(self, session: AsyncSession, params: Mapping[str, Any]) -> list[Any]:
        """Rows as lists of processed values, in column order."""
        args = self.args(params)
        conn = await driver_connection(session, self.sql, args)
        procs = await self._result_procs(conn)
        records = await conn.fetch(self.sql, *args)
        return [
            [proc(v) if proc is not None else v for v, proc in zip(r, procs, strict=True)]
            for r in records
        ]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        defaults = self.defaults
        out = []
        for name, proc in zip(self.names, self.procs, strict=True):
            value = params[name] if name in params else defaults[name]
            # None goes through the processor too, as in SQLAlchemy (JSON None is 'null').
            out.append(proc(value) if proc is not None else value)
        return out

    async def dicts(self, session: AsyncSession, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        keys = self.keys
        return [dict(zip(keys, v, strict=True)) for v in await self.fetch(session, params)]

    async def rows(self, session: AsyncSession, params: Mapping[str, Any]) -> list[Any]:
        """Rows read by attribute, like SQLAlchemy's."""
        make = self.row_type._make
        return [make(v) for v in await self.fetch(session, params)]

    async def execute(self, session: AsyncSession, params: Mapping[str, Any]) -> str:
        """Run it for its effect; asyncpg's status (``"UPDATE 1"``)."""
        args = self.args(params)
        conn = await driver_connection(session, self.sql, args)
        return str(await conn.execute(self.sql, *args))

    async def executemany(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
        """One statement for several parameter sets."""
        if len(rows) == 1:
            await self.execute(session, rows[0])
            return
        args = [self.args(r) for r in rows]
        conn = await driver_connection(session, self.sql, args, executemany=True)
        await conn.executemany(self.sql, args)


_RAW_KEY = "screenpop.raw_connection"
HOT_KEY = "screenpop.hot_connection"


def use_hot_connection(session: AsyncSession, connection: Any) -> None:
    """Run this session's raw statements on ``connection`` (an asyncpg connection in a
    transaction the caller began and ends) instead of the session's own connection.

    Statements that are not raw still go through the session, on its own connection and in its
    own transaction: only reads of reference data, and writes that stand alone (a queue created
    on first use), belong there; a hot-path write that cannot run raw raises ``NotRaw``.
    """
    session.info[HOT_KEY] = connection


def hot_connection(session: AsyncSession) -> Any:
    """The asyncpg connection ``use_hot_connection`` gave this session, or None."""
    return session.info.get(HOT_KEY)


class NotRaw(RuntimeError):
    """A write inside a hot-connection transaction could not run as a raw statement."""


def require_raw(session: AsyncSession, what: str) -> None:
    """Refuse the session fallback for a write while the transaction is on the hot pool."""
    if hot_connection(session) is not None:
        raise NotRaw(f"{what}: cannot run raw inside the hot transaction")


async def driver_connection(
    session: AsyncSession, sql: str, parameters: Any, *, executemany: bool = False
) -> Any:
    """The asyncpg connection under the session's current transaction (begun if need be).

    Cached on the session for the transaction: later statements of the same event reuse it.
    ``before_cursor_execute`` listeners still see the statement (statement counts in tests
    and ``bench.ingest_cpu --count``).
    """
    hot = session.info.get(HOT_KEY)
    if hot is not None:
        # The ingest transaction on the hot pool (``use_hot_connection``); engine-level
        # listeners still see the statement.
        engine = session.sync_session.get_bind()
        if engine._has_events:  # type: ignore[union-attr]
            engine.dispatch.before_cursor_execute(  # type: ignore[union-attr]
                None, None, sql, parameters, None, executemany
            )
        return hot
    sync = session.sync_session
    transaction = sync.get_transaction()
    cached = session.info.get(_RAW_KEY)
    if transaction is None or cached is None or cached[0] is not transaction:
        cached = await _driver_connection(session)
    sync_connection = cached[2]
    if sync_connection._has_events or sync_connection.engine._has_events:
        sync_connection.dispatch.before_cursor_execute(
            sync_connection, None, sql, parameters, None, executemany
        )
    return cached[1]


async def _driver_connection(session: AsyncSession) -> tuple[Any, Any, Any]:
    connection = await session.connection()
    fairy: Any = await connection.get_raw_connection()
    adapter = fairy.dbapi_connection
    # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with its first statement; when ours is
    # the first, begin it the same way so the statement runs inside the session's transaction.
    if adapter._transaction is None:
        await adapter._start_transaction()
    cached = (
        session.sync_session.get_transaction(),
        adapter._connection,
        connection.sync_connection,
    )
    session.info[_RAW_KEY] = cached
    return cached


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
    return await compiled.rows(session, params)


async def fetch_rows(
    session: AsyncSession, raw: RawStatement, params: Mapping[str, Any]
) -> Sequence[Any]:
    """``raw_rows``, else the same statement through SQLAlchemy (SQLite)."""
    rows = await raw_rows(session, raw, params)
    if rows is not None:
        return rows
    return (await session.execute(raw.stmt, params)).all()
