"""The database outage: logged once when it starts and once when it ends, probed meanwhile.

``begin`` is called by the error mapping (``app.errors.database_error``) each time a request
meets an unreachable database; the first call logs a warning and starts one probe task that
runs ``SELECT 1`` every second until it succeeds, then logs that the database is back. Requests
during the outage are answered 503 without a traceback each.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 1.0


class Outage:
    """Whether the database is known to be unreachable, and since when."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.detail = ""
        self._probe: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self.since is not None

    def begin(self, detail: str, engine: AsyncEngine | None) -> None:
        """Note a failed database call; log and start probing on the first of an outage."""
        if self.since is not None:
            return
        self.since = time.monotonic()
        self.detail = detail
        log.warning("database unreachable; answering 503 until it is back: %s", detail)
        if engine is not None:
            self._probe = asyncio.get_running_loop().create_task(self._wait_for(engine))

    def end(self) -> None:
        """Note that the database answered; log once if an outage was on."""
        if self.since is None:
            return
        seconds = time.monotonic() - self.since
        self.since = None
        log.warning("database reachable again after %.1f s", seconds)

    async def _wait_for(self, engine: AsyncEngine) -> None:
        while self.since is not None:
            await asyncio.sleep(PROBE_INTERVAL_S)
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            except Exception:  # still down (any way the connect or statement fails)
                continue
            self.end()


OUTAGE = Outage()
