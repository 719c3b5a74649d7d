"""Calls that end on their own: a live call with no event for ``SCREENPOP_CALL_MAX_IDLE_S``.

The provider's end event can be lost (a PBX restart, a dropped webhook). Every
``SCREENPOP_SWEEP_INTERVAL_S`` each instance looks for live calls whose last event (or first
sight) is older than the limit and closes each one through the normal event path: an event of
kind ``expired`` (``raw`` null) goes through ``CallService.ingest``, so the journal, the call's
row (state ``ended``), the queues' figures and the agents' presence all follow as for an end
the PBX sent. The event's id is derived from the call alone, so when several instances (or a
restarted one) expire the same call, the journal keeps the first and the rest are duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.calls.models import Call
from app.calls.service import CallService
from app.calls.state_machine import LIVE_STATES
from app.db import utcnow
from telephony.events import CallerId, CallEvent, derive_event_id

log = logging.getLogger(__name__)

# Calls expired per sweep at most; the next sweep takes the rest.
BATCH = 200


def expiry_event(call: Call, at: datetime) -> CallEvent:
    """The ``expired`` event that closes ``call`` at ``at``."""
    provider_id = call.id.split(":", 1)[1] if ":" in call.id else call.id
    return CallEvent(
        source=call.source,
        event_id=derive_event_id(call.source, provider_id, "expired"),
        call_id=provider_id,
        kind="expired",
        caller=CallerId(
            raw=call.caller_raw,
            e164=call.caller_e164,
            withheld=call.caller_withheld,
            valid=call.caller_e164 is not None,
        ),
        occurred_at=at,
        raw=None,
    )


async def idle_calls(service: CallService, now: datetime) -> list[Call]:
    """Live calls with no event since ``now`` minus the limit, oldest first."""
    cutoff = now - timedelta(seconds=service.settings.call_max_idle_s)
    last = func.coalesce(Call.last_event_at, Call.first_seen_at)
    query = (
        select(Call).where(Call.state.in_(LIVE_STATES), last < cutoff).order_by(last).limit(BATCH)
    )
    async with service.store.reading() as session:
        return list((await session.execute(query)).scalars().all())


async def expire_idle(service: CallService, now: datetime | None = None) -> int:
    """Close every call idle for longer than the limit; the number closed by this call."""
    moment = now or utcnow()
    closed = 0
    for call in await idle_calls(service, moment):
        result = await service.ingest(expiry_event(call, moment), received_at=moment)
        if result.applied and not result.duplicate:
            closed += 1
            limit = service.settings.call_max_idle_s
            log.info("call %s closed after %ss with no event", call.id, limit)
    return closed


async def run_expiry(service: CallService) -> None:
    """The background sweep (``app.calls.runtime``); a failed sweep is retried at the next."""
    while True:
        await asyncio.sleep(service.settings.sweep_interval_s)
        try:
            await expire_idle(service)
        except Exception:
            log.exception("expiring idle calls failed; will retry")
