"""Scheduled insight refresh inside the service (``SCREENPOP_INSIGHTS_REFRESH_S``, 0 = off).

Every interval it runs ``train --since`` from the previous run's "as of" time, so new orders
and wrap-ups (satisfaction, offer outcomes) reach the profile without a full retrain. Without
any earlier run it does a full one. The CPU work runs in a worker thread. Enable it on ONE
instance (or run ``screenpop train --since`` from cron instead): instances do not coordinate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.insights.models import InsightRun
from app.settings import Settings
from app.state import State

log = logging.getLogger(__name__)
# Overlap with the previous run so a record written while it ran is not missed.
OVERLAP = timedelta(minutes=5)


async def start(state: State) -> None:
    """Start the refresh loop when the setting asks for one (call from the lifespan)."""
    interval = state["settings"].insights_refresh_s
    if interval <= 0:
        return
    task = asyncio.create_task(_loop(state, interval), name="insights-refresh")
    state["services"]["insights_refresh"] = task


async def stop(state: State) -> None:
    task = state["services"].pop("insights_refresh", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def refresh_once(engine: AsyncEngine, settings: Settings) -> None:
    """One refresh: ``--since`` the last run's as-of (minus an overlap), or full without one;
    then the customer-base reports (``app.reports.customer_base``)."""
    async with engine.connect() as conn:
        query = select(InsightRun.as_of).order_by(InsightRun.id.desc()).limit(1)
        last: datetime | None = (await conn.execute(query)).scalar_one_or_none()
    since = last - OVERLAP if last is not None else None
    # Imported here: the model's libraries (LightGBM) stay out of every server's start-up.
    from app.insights.train import train
    from app.reports.customer_base import RefreshOptions

    report = await train(
        engine,
        since=since,
        decline_suppress_days=settings.decline_suppress_days,
        reports=RefreshOptions.of(settings),
    )
    log.info("insights refreshed", extra={"insights": report.as_dict()})


async def _loop(state: State, interval: int) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await refresh_once(state["engine"], state["settings"])
        except Exception:  # a failed refresh must not stop the next one
            log.exception("insights refresh failed")
