"""Calls that end on their own: a live call with no event for ``SCREENPOP_CALL_MAX_IDLE_S``;
and offers that ring out (``ring_out``: an agent with no open page, past the queue's
``ring_timeout_s``, as ``app.queues.timeouts`` finds them).

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
from typing import Literal

from sqlalchemy import func, select

from app.calls.models import Call
from app.calls.service import CallService
from app.calls.state_machine import LIVE_STATES
from app.db import utcnow
from telephony.events import OFFER_WITHDRAWN, CallerId, CallEvent, derive_event_id

log = logging.getLogger(__name__)

# Calls expired per sweep at most; the next sweep takes the rest.
BATCH = 200


def expiry_event(call: Call, at: datetime) -> CallEvent:
    """The ``expired`` event that closes ``call`` at ``at``."""
    return _own_event(call, "expired", at)


def ring_out_event(call: Call, username: str, since: datetime, at: datetime) -> CallEvent:
    """The ``rang_out`` event that withdraws the offer of ``call`` (ringing ``username`` since
    ``since``) from that agent, as a PBX's ``unanswered`` would; the call stays queued."""
    return _own_event(call, "rang_out", at, username, since.isoformat())


def _own_event(
    call: Call, kind: Literal["expired", "rang_out"], at: datetime, *parts: str
) -> CallEvent:
    """One of screenpop's own events on ``call`` (``raw`` null); its id is derived from the
    call, the kind and ``parts`` alone, so several instances sending it journal it once."""
    provider_id = call.id.split(":", 1)[1] if ":" in call.id else call.id
    agent = parts[0] if parts else None
    return CallEvent(
        source=call.source,
        event_id=derive_event_id(call.source, provider_id, kind, *parts),
        call_id=provider_id,
        kind=kind,
        agent=agent,
        attributes={OFFER_WITHDRAWN: True} if agent else {},
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


async def ring_out(
    service: CallService, offers: list[tuple[str, str, datetime]], now: datetime
) -> int:
    """Withdraw each offer ``(call id, username, ringing since)`` still ringing that agent, by a
    ``rang_out`` event through ``CallService.ingest``; the number withdrawn by this call."""
    if not offers:
        return 0
    ids = {call_id for call_id, _, _ in offers}
    async with service.store.reading() as session:
        calls = {
            c.id: c for c in (await session.execute(select(Call).where(Call.id.in_(ids)))).scalars()
        }
    withdrawn = 0
    for call_id, username, since in offers:
        call = calls.get(call_id)
        if call is None or call.state != "ringing" or username not in (call.offered_to or ()):
            continue  # answered, withdrawn or over since the sweep looked
        event = ring_out_event(call, username, since, now)
        result = await service.ingest(event, received_at=now)
        if result.applied and not result.duplicate:
            withdrawn += 1
            log.info("offer of call %s to %s rang out (no open page)", call.id, username)
    return withdrawn


async def run_expiry(service: CallService) -> None:
    """The background sweep (``app.calls.runtime``); a failed sweep is retried at the next."""
    while True:
        await asyncio.sleep(service.settings.sweep_interval_s)
        try:
            await expire_idle(service)
        except Exception:
            log.exception("expiring idle calls failed; will retry")
