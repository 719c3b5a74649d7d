"""``screenpop sync SOURCE``: read a sql source's sync queries into screenpop's database.

Each query (customers, then orders, balances, loyalty) is run with ``:since`` = the last stored
value of its ``updated_at`` column (1970-01-01 00:00:00 on the first run and with
``--full``) and streamed in batches of ``batch_size`` rows. Each batch is stored, and the
cursor saved, in ONE transaction: a run that crashes resumes from the last whole batch.
Queries must ``ORDER BY`` their cursor column; the cursor saved after a batch is the last
value the batch holds *all* rows of, so rows sharing a timestamp across a batch boundary are
read again (storing is idempotent) rather than skipped. Without an ``updated_at`` column a
query is read whole every run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.customers.order_records import STORE
from app.customers.records import RecordReport, store_customers
from app.db import utcnow
from app.sources.config import Source, sql_parameters
from app.sources.fetchers import source_engine
from app.sources.models import SyncCursor

EPOCH = datetime(1970, 1, 1)
CURSOR_COLUMN = "updated_at"


class SyncError(ValueError):
    """A source cannot be synced (unknown, not sql, no sync queries)."""


@dataclass
class EntityReport:
    rows: int = 0
    records: RecordReport = field(default_factory=RecordReport)
    since: str | None = None
    cursor: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, **self.records.as_dict(), "since": self.since,
                "cursor": self.cursor}  # fmt: skip


def _encode(value: Any) -> tuple[str, str]:
    if isinstance(value, datetime):
        return value.isoformat(), "datetime"
    if isinstance(value, int):
        return str(value), "int"
    return str(value), "text"


def _decode(value: str, kind: str) -> Any:
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "int":
        return int(value)
    return value


async def _load_cursor(conn: AsyncConnection, source: str, entity: str) -> Any:
    query = select(SyncCursor.value, SyncCursor.kind).where(
        SyncCursor.source == source, SyncCursor.entity == entity
    )
    row = (await conn.execute(query)).first()
    return None if row is None or row.value is None else _decode(row.value, row.kind)


async def _save_cursor(
    conn: AsyncConnection, source: str, entity: str, value: Any, report: EntityReport
) -> None:
    encoded, kind = _encode(value) if value is not None else (None, "text")
    row = {"source": source, "entity": entity, "value": encoded, "kind": kind,
           "last_run": report.as_dict(), "updated_at": utcnow()}  # fmt: skip
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(SyncCursor).values(**row)
    keep = {k: stmt.excluded[k] for k in ("value", "kind", "last_run", "updated_at")}
    if value is None:
        del keep["value"], keep["kind"]
    await conn.execute(stmt.on_conflict_do_update(index_elements=["source", "entity"], set_=keep))


class _CursorTracker:
    """The last cursor value whose rows have all been seen (ordered input)."""

    def __init__(self) -> None:
        self.last: Any = None
        self.complete: Any = None

    def see(self, row: Mapping[str, Any]) -> None:
        value = row.get(CURSOR_COLUMN)
        if value is not None and value != self.last:
            self.complete, self.last = self.last, value


async def _sync_entity(
    own: AsyncEngine,
    src: AsyncEngine,
    name: str,
    entity: str,
    query: str,
    *,
    full: bool,
    batch_size: int,
    region: str,
    progress: Callable[[int], None] | None,
) -> EntityReport:
    report = EntityReport()
    async with own.connect() as conn:
        since = None if full else await _load_cursor(conn, name, entity)
    report.since = None if since is None else str(since)
    params = {"since": EPOCH if since is None else since}
    used = {k: v for k, v in params.items() if k in sql_parameters(query)}
    tracker = _CursorTracker()
    async with src.connect() as source_conn:
        result = await source_conn.stream(text(query), used)
        async for batch in result.mappings().partitions(batch_size):
            rows = [dict(row) for row in batch]
            for row in rows:
                tracker.see(row)
            async with own.begin() as conn:
                if entity == "customers":
                    await store_customers(conn, name, rows, report.records, region=region)
                else:
                    await STORE[entity](conn, name, rows, report.records)
                report.rows += len(rows)
                await _save_cursor(conn, name, entity, tracker.complete, report)
            if progress is not None:
                progress(len(rows))
    async with own.begin() as conn:
        report.cursor = None if tracker.last is None else str(tracker.last)
        await _save_cursor(conn, name, entity, tracker.last, report)
    return report


async def sync_source(
    own: AsyncEngine,
    name: str,
    source: Source | None,
    *,
    full: bool = False,
    region: str = "GB",
    progress: Callable[[int], None] | None = None,
    engine: AsyncEngine | None = None,
) -> dict[str, EntityReport]:
    """Run one source's sync queries; returns a report per entity (see the module docstring)."""
    if source is None:
        raise SyncError(f"no source named {name!r} in the sources file")
    if source.kind != "sql" or source.sync is None or not source.sync.queries():
        raise SyncError(f"source {name!r} has no [sources.{name}.sync] queries")
    assert source.url is not None
    src = engine or source_engine(source.url, pool_size=1)
    try:
        return {
            entity: await _sync_entity(
                own,
                src,
                name,
                entity,
                query,
                full=full,
                batch_size=source.sync.batch_size,
                region=region,
                progress=progress,
            )
            for entity, query in source.sync.queries().items()
        }
    finally:
        if engine is None:
            await src.dispose()
