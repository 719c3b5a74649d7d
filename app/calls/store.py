"""Where an event is written: one interface, a store per database.

Every store does the same four things for one event: *read* the call's row (and whether the
event is journaled already: a duplicate changes nothing), *plan* on it (``Planner.plan``, the
same planner everywhere), *write* the call, the journal row, the pop deliveries and the
profile-view audit rows all at once, and, before the event is answered, make the write
*durable*. If planning or writing fails, the event is journaled on its own with ``applied =
false`` (``journal_unapplied``) and start-up replay applies it later: an accepted event is
never lost.

``SessionStore`` (SQLite, and any database through SQLAlchemy) writes in one plain
transaction. ``app.calls.pg_store.PgStore`` is PostgreSQL's: one statement per event, an
optimistic version check, the row lock as fallback, and group commit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.calls import repository as repo
from app.calls.planning import Applied, CallRow, Plan
from app.customers import service as customers
from telephony.events import CallEvent

log = logging.getLogger(__name__)

# Plans one event on the call's row (None: a new call), reading through the session given.
PlanFn = Callable[[AsyncSession, CallRow | None], Awaitable[Plan]]


@dataclass(frozen=True, slots=True)
class Written:
    """One event's fate: a duplicate, applied (what changed), or journaled for replay."""

    duplicate: bool
    applied: Applied | None = None


DUPLICATE = Written(duplicate=True)
UNAPPLIED = Written(duplicate=False)


class EventStore(Protocol):
    """The calls domain's one write path (see the module's docstring)."""

    async def write_event(
        self, event: CallEvent, record: Mapping[str, Any], plan: PlanFn
    ) -> Written: ...

    async def durable(self) -> None:
        """Return once every write this store acknowledged so far is on disk."""

    def reading(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session for background reads (pop completion)."""

    async def replace_pop(self, call_id: str, pop_version: int, doc: Mapping[str, Any]) -> bool:
        """The call's pop replaced by ``doc`` if still at ``pop_version``, committed."""

    def remember(self, call_id: str, row: CallRow) -> None:
        """The call's row as just written outside an event (pop completion): a store that
        keeps rows plans the call's next event on it."""

    def forget_older(self, call_id: str, version: int) -> None:
        """Another instance wrote ``version`` of the call: drop an older row kept for it."""

    async def close(self) -> None: ...


async def journal_unapplied(
    event: CallEvent,
    record: Mapping[str, Any],
    insert: Callable[[Mapping[str, Any]], Awaitable[None]],
) -> Written:
    """The event could not be applied: journal it alone, ``applied = false``, for replay.

    Called after the failed transaction was rolled back (or a failed single statement left
    nothing); ``insert`` writes one journal row, committed on its own."""
    log.exception(
        "applying %s event %s failed; journaled for replay", event.full_call_id, event.event_id
    )
    await insert({**record, "applied": False})
    return UNAPPLIED


async def write_plan(session: AsyncSession, plan: Plan) -> bool:
    """Write a plan inside the session's transaction, the call's row already locked; False
    when a new call was inserted meanwhile by another event (plan again on its row)."""
    if plan.new:
        if not await repo.insert_call(session, plan.values):
            return False
    elif not await repo.update_call(session, plan.call_id, plan.version, plan.values):
        raise RuntimeError(f"call {plan.call_id} changed under its lock")
    if plan.pushes:
        await repo.record_pushes(session, plan.pushes)
    if plan.views:
        await customers.insert_profile_views(session, plan.views)
    return True


class SessionStore:
    """Events in one SQLAlchemy transaction each: journal row in, call row locked (SQLite's
    single writer serialises instead), plan, write, commit. Durable at commit."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def write_event(
        self, event: CallEvent, record: Mapping[str, Any], plan: PlanFn
    ) -> Written:
        async with self.sessionmaker() as session:
            journal_id, row = await repo.journal_and_lock(session, record, event.full_call_id)
            if journal_id is None:
                await session.rollback()
                return DUPLICATE
            try:
                planned = await plan(session, row)
                while not await write_plan(session, planned):
                    planned = await plan(session, await repo.lock_call(session, event.full_call_id))
                await session.commit()
                return Written(duplicate=False, applied=planned.applied)
            except Exception:
                await session.rollback()

                async def insert(values: Mapping[str, Any]) -> None:
                    # With the id it had: the journal's arrival order is unchanged.
                    await repo.insert_journal(session, {**values, "id": journal_id})
                    await session.commit()

                return await journal_unapplied(event, record, insert)

    async def durable(self) -> None:
        """Each event's transaction commits before it is answered."""

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def replace_pop(self, call_id: str, pop_version: int, doc: Mapping[str, Any]) -> bool:
        async with self.sessionmaker() as session:
            replaced = await repo.update_pop(session, call_id, pop_version, {"pop": doc})
            await session.commit()
        return replaced

    def remember(self, call_id: str, row: CallRow) -> None:
        """Keeps no rows: every event reads its call in its transaction."""

    def forget_older(self, call_id: str, version: int) -> None:
        """Keeps no rows."""

    async def close(self) -> None:
        """Nothing of its own to release."""
