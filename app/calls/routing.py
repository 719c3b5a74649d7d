"""Routing hints for a call just queued: the caller its first event resolved, routed by the
customers domain's rules (``app.customers.routing``).

Used by the answers that queue the call themselves (Twilio's TwiML). The call's match is
read back (the event's ingest resolved it); a shared number routes by its best-ranked
customer, as the PBX lookup does. Hints are a help, not a condition: when the database fails
them the call is still queued, with the default routing, and the log says why.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.calls import repository as repo
from app.customers import routing
from app.customers.routing import RoutingRules
from app.errors import NotFound
from telephony.routing import RoutingHints

log = logging.getLogger(__name__)


def _customer_of(call: dict[str, Any]) -> tuple[int | None, str]:
    """The customer to route by, and the match kind."""
    match = call.get("match") or {}
    kind = str(match.get("kind") or "none")
    if call.get("customer_id") is not None:
        return int(call["customer_id"]), kind
    candidates = match.get("candidates") or []
    if kind == "multiple" and candidates:
        return int(candidates[0]["id"]), kind
    return None, kind


async def hints_for_call(
    sessionmaker: async_sessionmaker[AsyncSession],
    call_id: str,
    rules: RoutingRules,
    *,
    default_queue: str | None,
) -> RoutingHints:
    """The hints for the call's caller (default routing for an unknown or withheld one)."""
    try:
        async with sessionmaker() as session:
            call = await repo.get_call(session, call_id)
            customer_id, kind = _customer_of(call) if call else (None, "none")
            if customer_id is None:
                return routing.unmatched_hints(rules, match=kind, default_queue=default_queue)
            return await routing.hints_for_customer(
                session, customer_id, rules, match=kind, default_queue=default_queue
            )
    except NotFound:  # the customer was deleted since the match
        return routing.unmatched_hints(rules, match="none", default_queue=default_queue)
    except (SQLAlchemyError, OSError) as exc:  # a pool timeout included
        log.warning("routing hints skipped for %s (default routing): %r", call_id, exc)
        return routing.unmatched_hints(rules, match="unknown", default_queue=default_queue)
