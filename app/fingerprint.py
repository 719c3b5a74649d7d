"""Whether a table kept in memory changed, without reading it into Python (PostgreSQL).

Reference data re-read every few seconds (the directory's users and queues, the queue
statistics' roster) costs the event loop milliseconds of CPU per read at 2,000 users: every
pop in flight waits for it. ``Fingerprint`` asks PostgreSQL for an md5 of the rows instead
(one short row back); only a changed fingerprint is worth a full read. SQLite has no md5:
there the answer is always "changed".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from app.raw_statements import RawStatement, fetch_rows, is_postgresql


class Fingerprint:
    """md5s of every row of each of ``stmts`` (Core selects), in a stable order."""

    def __init__(self, *stmts: Any) -> None:
        digests = []
        for i, stmt in enumerate(stmts):
            name = f"fp_rows_{i}"
            rows = stmt.subquery(name)
            as_text: Any = literal_column(f"{name}::text")
            digest = func.md5(cast(func.array_agg(aggregate_order_by(as_text, as_text)), Text))
            digests.append(select(func.coalesce(digest, "")).select_from(rows).scalar_subquery())
        self._raw = RawStatement(select(*digests))

    async def read(self, session: AsyncSession) -> tuple[str, ...] | None:
        """The fingerprint now; None where it cannot be taken (SQLite)."""
        if not is_postgresql(session):
            return None
        return tuple(str(d) for d in (await fetch_rows(session, self._raw, {}))[0])
