"""Following a call's live parts: started at first sight, stored on the call as they arrive.

The calls domain calls ``follow_call`` (in the background) when it first sees a call, with
``store``: a function that writes the parts onto the call's pop document (key ``live``) and
sends ``pop.update`` to the agents holding it. The parts are stored raw, best-precedence
first; ``pop_parts.with_live`` merges them into every pop message built from the document,
so the local profile being completed later never overwrites them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.records import refs_of
from app.sources.live import Caller, LiveSources
from app.sources.parts import Part

log = logging.getLogger(__name__)
StoreParts = Callable[[list[dict[str, Any]]], Awaitable[None]]


def part_dicts(parts: list[Part], precedence: list[str]) -> list[dict[str, Any]]:
    """Parts as JSON for the call's document, the winning source of each part first."""
    rank = {name: i for i, name in enumerate(precedence)}
    return [p.as_dict() for p in sorted(parts, key=lambda p: rank.get(p.source, len(rank)))]


def caller_of(call: Mapping[str, Any], refs: Mapping[str, str]) -> Caller | None:
    """What the sources can be asked with; None when there is nothing to ask (withheld)."""
    account_ref = (call.get("match") or {}).get("account_ref")
    e164 = call.get("caller_e164")
    if e164 is None and not account_ref and not refs:
        return None
    return Caller(e164=e164, account_ref=account_ref, refs=dict(refs))


async def follow_call(
    live: LiveSources,
    session: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    call: Mapping[str, Any],
    store: StoreParts,
) -> None:
    """Ask every source for this call; ``store`` what arrived within the budgets, then again
    each time a late part arrives. Never raises (a failure is logged)."""
    try:
        customer_id = call.get("customer_id")
        refs: dict[str, str] = {}
        if customer_id is not None:
            async with session() as db:
                refs = await refs_of(db, int(customer_id))
        caller = caller_of(call, refs)
        if caller is None:
            return
        precedence = live.config.ordered()
        fetch = live.start(str(call["id"]), caller)
        parts = await fetch.within_budget()
        if parts:
            await store(part_dicts(parts, precedence))
        async for parts in fetch.updates():
            await store(part_dicts(parts, precedence))
    except Exception:
        log.exception("live parts of call %s failed", call.get("id"))
