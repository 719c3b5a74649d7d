"""Who may still act: every user's active flag, role, extension and queues, kept in memory.

Tokens live for hours; this cache is what makes a change to a user take effect within
``users_refresh_s`` seconds (default 5): every request and every open websocket is checked
against it. It is re-read every ``users_refresh_s`` seconds; on PostgreSQL only when the
rows' fingerprint changed (``app.fingerprint``), so an unchanged table costs one short row.

- A user set inactive: their token is refused (401 "user deactivated") and their open
  websockets close with 4401.
- A changed role: requests run with the current role (a demoted supervisor gets 403 on
  supervisor endpoints); open websockets close with 4403 so the client reconnects with
  what its new role allows. A supervisor whose queues change is closed the same way (the
  wallboard's scope comes from the queues).
- A username that is not in the users table at all keeps its token's role (users are
  deactivated, never deleted, by ``screenpop`` and the API).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import Forbidden, Unauthorized
from app.fingerprint import Fingerprint
from app.raw_statements import RawStatement, fetch_rows
from app.users.models import User
from app.users.service import Principal

log = logging.getLogger(__name__)

USER_STATES = select(User.username, User.role, User.active, User.extension, User.queues)
_USER_STATES = RawStatement(USER_STATES)
_FINGERPRINT = Fingerprint(USER_STATES)
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403


@dataclass(frozen=True, slots=True)
class UserState:
    """One user as the access check sees them."""

    role: str
    active: bool
    extension: str | None
    queues: frozenset[str]


class Access:
    """The users' current state, re-read every ``refresh_s`` seconds by ``run``."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], refresh_s: float) -> None:
        self.sessionmaker = sessionmaker
        self.refresh_s = refresh_s
        self.users: dict[str, UserState] = {}
        self._fingerprint: tuple[str, ...] | None = None
        self._changed = asyncio.Event()
        self._failing = False

    async def refresh(self) -> bool:
        """Read the users again if they changed; True when something did."""
        async with self.sessionmaker() as session:
            fingerprint = await _FINGERPRINT.read(session)
            if fingerprint is not None and fingerprint == self._fingerprint:
                return False
            rows = await fetch_rows(session, _USER_STATES, {})
        users = {
            r.username: UserState(r.role, bool(r.active), r.extension, frozenset(r.queues or ()))
            for r in rows
        }
        self._fingerprint = fingerprint
        if users == self.users:
            return False
        self.users = users
        # Wake every websocket watcher, then start a new generation.
        self._changed.set()
        self._changed = asyncio.Event()
        return True

    async def run(self) -> None:
        """Refresh forever; a failed read is logged once until a read works again."""
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
            except Exception as exc:
                if not self._failing:
                    log.warning("user access refresh failed (keeping the last read): %s", exc)
                self._failing = True
            else:
                if self._failing:
                    log.info("user access refresh works again")
                self._failing = False

    def check(self, principal: Principal) -> Principal:
        """``principal`` with its current role; raises ``Unauthorized`` for an inactive user."""
        state = self.users.get(principal.username)
        if state is None:
            return principal
        if not state.active:
            raise Unauthorized("user deactivated")
        if state.role == principal.role:
            return principal
        return Principal(username=principal.username, role=state.role)

    async def revoked(self, principal: Principal, *, supervisor: bool) -> tuple[int, str]:
        """Wait until ``principal`` may no longer keep its websocket; the close code and reason.

        Deactivated: 4401. Role changed (or, for a supervisor websocket, queues changed): 4403.
        """
        start = self.users.get(principal.username)
        while True:
            await self._changed.wait()
            try:
                current = self.check(principal)
            except Unauthorized as exc:
                return CLOSE_UNAUTHORIZED, f"unauthorized: {exc.detail}"
            if supervisor and not current.is_supervisor:
                return CLOSE_FORBIDDEN, f"forbidden: {Forbidden('supervisor role required').detail}"
            now = self.users.get(principal.username)
            if current.role != principal.role:
                return CLOSE_FORBIDDEN, "forbidden: role changed, reconnect"
            if supervisor and start is not None and now is not None and now.queues != start.queues:
                return CLOSE_FORBIDDEN, "forbidden: queues changed, reconnect"


async def start(access: Access) -> asyncio.Task[None]:
    """Read once (so the first request is checked) and keep refreshing in a task; a first
    read that fails is retried by the task (tokens are then checked only for validity)."""
    try:
        await access.refresh()
    except Exception as exc:
        log.warning("user access: first read failed (retried by the task): %s", exc)
    return asyncio.create_task(access.run(), name="users-access")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
