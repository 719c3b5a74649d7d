"""What agents and supervisors do to calls: replay pops on connect, receipts, choose the
customer of a multiple or unmatched call, wrap up, list today's calls."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.calls import drafts, legs
from app.calls import repository as repo
from app.calls.directory import Directory
from app.calls.planning import Planner, push_rows
from app.calls.pop import (
    caller_of,
    change_message,
    customer_name,
    document_from_profile,
    pop_message,
    state_message,
)
from app.calls.publishing import CALLS_CHANNEL, Publisher, agent_channel
from app.calls.receipts import ReceiptWriter, storable
from app.calls.state_machine import AGENT_LIVE_STATES
from app.customers import service as customers
from app.db import utcnow
from app.errors import DATABASE_ERRORS, Conflict, Forbidden, Invalid, NotFound, Unavailable
from app.live.hub import Hub
from app.live.provenance import Stamped
from app.queues import dispositions
from app.settings import Settings
from app.sources import outbox
from app.sources.config import SourcesConfig
from app.users.service import Principal


def local_midnight(settings: Settings) -> datetime:
    """Start of today in ``settings.timezone``, as an aware datetime."""
    local = utcnow().astimezone(ZoneInfo(settings.timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class AgentActions:
    """Agents' and supervisors' actions on calls (``CallService.actions``)."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        hub: Hub,
        directory: Directory,
        publisher: Publisher,
        receipts: ReceiptWriter,
        planner: Planner,
    ) -> None:
        self.settings = settings
        self.planner = planner
        self.sessionmaker = sessionmaker
        self.hub = hub
        self.directory = directory
        self.publisher = publisher
        self.receipts = receipts
        # Destinations of the journal (app/sources), when configured: set by the calls runtime.
        self.sources: SourcesConfig | None = None

    async def live_pops(self, principal: Principal) -> list[dict[str, Any]]:
        """Every pop still live for this agent, as ``pop`` messages (replay on connect)."""
        async with self.sessionmaker() as session:
            calls = await repo.live_calls_for_agent(session, principal.username)
        messages = []
        for call in calls:
            messages.append(pop_message(call, role=principal.role, settings=self.settings))
            doc = call.get("pop") or {}
            if not doc.get("complete", True) and call.get("customer_id") is not None:
                self.publisher.finish_later(call["id"], int(call["customer_id"]))
        return messages

    async def states_of(self, principal: Principal, call_ids: set[str]) -> list[dict[str, Any]]:
        """A ``call.state`` for each of ``call_ids`` no longer live for this agent (a resync:
        calls whose end or withdrawal was published while the broker was down)."""
        if not call_ids:
            return []
        async with self.sessionmaker() as session:
            rows = await repo.call_states(session, call_ids)
        return [
            state_message(call_id, state, withdrawn=agent != principal.username)
            for call_id, state, agent in rows
            if state not in AGENT_LIVE_STATES or agent not in (None, principal.username)
        ]

    async def record_receipt(
        self,
        principal: Principal,
        call_id: str,
        version: int | None,
        *,
        seen: bool,
        held: bool = False,
    ) -> None:
        """An agent's screen confirmed (or showed) a pop: queued, written within
        ``receipt_flush_ms`` (``flush`` / ``drain`` write it at once). A call whose pop was
        never pushed to this agent (no such call, or not theirs) is ``NotFound`` and nothing
        is queued; ``held``: the agent's connection holds that pop (no query needed)."""
        if not held and not await self._pop_sent(principal, call_id):
            raise NotFound(f"call_id: no pop of call {call_id[:80]!r} was sent to you")
        self.receipts.add(call_id, principal.username, version, utcnow(), seen=seen)

    async def _pop_sent(self, principal: Principal, call_id: str) -> bool:
        if not (storable(call_id) and storable(principal.username)):
            return False  # no row can have it
        try:
            async with self.sessionmaker() as session:
                return await repo.pop_sent(session, call_id, principal.username)
        except DATABASE_ERRORS as exc:
            # An error frame for the screen, not a traceback per receipt during an outage.
            raise Unavailable("the receipt could not be checked; the database is away") from exc

    def pop_written(self, username: str, item: Stamped, written_at: float) -> None:
        """An event's pop was written to ``username``'s socket at ``written_at`` (Unix time):
        the time since the event arrived is pop health. It goes to every instance's queue
        statistics (``pop.pushed`` on ``calls``), to the delivery row (read back by their
        rebuild after a restart) and to ``screenpop_pop_latency_seconds``."""
        message = item.message
        arrived = item.provenance.arrived_at
        call = message.get("call")
        if message.get("type") != "pop" or arrived is None or not isinstance(call, Mapping):
            return
        call_id = call.get("id")
        if not isinstance(call_id, str):
            return
        # Wall clocks: another instance may have received the event; never below zero.
        latency_ms = round(max(0.0, (written_at - arrived) * 1000), 3)
        self.receipts.add_written(call_id, username, latency_ms)
        metrics = self.publisher.metrics
        if metrics is not None:
            metrics.pop_latency.observe(latency_ms / 1000)
        pushed = {
            "type": "pop.pushed",
            "call_id": call_id,
            "agent": username,
            "queue": call.get("queue"),
            "match_kind": (message.get("match") or {}).get("kind"),
            "latency_ms": latency_ms,
        }
        # Not awaited: the pump that wrote the pop must not wait for Redis.
        self.publisher.spawn(self.hub.publish(CALLS_CHANNEL, pushed), "pop-pushed")

    async def choose_match(
        self, call_id: str, customer_id: int, principal: Principal
    ) -> dict[str, Any]:
        """The agent picked the customer: remember it for the number, re-pop as a new version."""
        async with self.sessionmaker() as session:
            row = await repo.lock_call(session, call_id)
            if row is None:
                raise NotFound(f"call {call_id!r} not found")
            involved = principal.username == row["agent"] or principal.username in (
                row["offered_to"] or []
            )
            if not (involved or principal.is_supervisor):
                raise Forbidden(
                    "only an agent on this call or a supervisor may choose its customer"
                )
            call = await self._rematch(session, row, customer_id, principal)
            refs = await self._recipients(session, call, principal)
            pushes, views = push_rows(call, refs, reason="match")
            await repo.record_pushes(session, pushes)
            if views:
                await customers.insert_profile_views(session, views)
            await session.commit()
        for ref in refs:
            await self.hub.publish(
                agent_channel(ref.username),
                pop_message(call, role=ref.role, settings=self.settings),
            )
        now = utcnow()
        await self.hub.publish(
            CALLS_CHANNEL,
            change_message(
                call, event_kind="match", occurred_at=now, received_at=now, old_state=call["state"]
            ),
        )
        return pop_message(call, role=principal.role, settings=self.settings)

    async def _rematch(
        self, session: AsyncSession, row: dict[str, Any], customer_id: int, principal: Principal
    ) -> dict[str, Any]:
        """The call's match and pop set to ``customer_id`` (versioned), the choice remembered.

        A call whose match has candidates (its number's customers, or the IVR account's) takes
        one of them, else ``Invalid`` and nothing changes; a call with none (an unknown or
        withheld caller) can be linked to any customer found by search."""
        call_id = row["id"]
        candidates = [c.get("id") for c in (row["match"] or {}).get("candidates") or []]
        if candidates and customer_id not in candidates:
            raise Invalid(
                f"customer_id: customer {customer_id} is not among this call's candidates"
                f" ({', '.join(str(c) for c in candidates[:20])})"
            )
        profile = await customers.assemble_profile(
            session, customer_id, decline_suppress_days=self.settings.decline_suppress_days
        )
        if row["caller_e164"]:
            await customers.remember_choice(
                session,
                e164=row["caller_e164"],
                customer_id=customer_id,
                username=principal.username,
            )
        match = dict(row["match"] or {})
        match.update(
            kind="single",
            customer_id=customer_id,
            matched_by="agent_choice",
            chosen_by=principal.username,
        )
        doc = document_from_profile(profile, complete=True)
        if (row["pop"] or {}).get("transfer"):
            doc["transfer"] = row["pop"]["transfer"]
        values = {
            "match": match,
            "customer_id": customer_id,
            "pop": doc,
            "pop_version": row["pop_version"] + 1,
        }
        if not await repo.update_call(session, call_id, row["version"], values):
            raise Conflict(f"call {call_id!r} changed meanwhile; try again")
        return {**row, **values, "version": row["version"] + 1}

    async def _recipients(
        self, session: AsyncSession, call: dict[str, Any], principal: Principal
    ) -> list[Any]:
        """Who gets the new pop: the live holders of the old one, and the chooser."""
        holders = set(await repo.pop_holders(session, call["id"]))
        live = (
            {call["agent"], *(call["offered_to"] or [])}
            if call["state"] in AGENT_LIVE_STATES
            else set()
        )
        recipients = sorted((holders & live) | {principal.username})
        return [
            ref
            for u in recipients
            if (ref := await self.directory.agent(session, u)) is not None and ref.known
        ]

    async def wrapup(
        self, call_id: str, principal: Principal, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Record the outcome of the principal's leg of the call as one interaction: the
        agent on it, or one who transferred it; a second wrap-up of the same leg is a
        conflict. A supervisor who was not on the call may wrap it up if nobody has."""
        async with self.sessionmaker() as session:
            call = await repo.get_call(session, call_id)
            if call is None:
                raise NotFound(f"call {call_id!r} not found")
            own_leg = await legs.had_leg(
                session, self.planner, call_id, principal.username, call["agent"]
            )
            if not (own_leg or principal.is_supervisor):
                raise Forbidden(
                    "only an agent connected to the call (now or before a transfer) or a "
                    "supervisor may wrap it up"
                )
            # Their own leg once; a supervisor who was not on the call only if nobody has.
            leg = principal.username if own_leg else None
            if await drafts.wrapped_up(session, call_id, leg):
                raise Conflict(f"call {call_id!r} is already wrapped up")
            await dispositions.check_disposition(session, call["queue"], data["disposition"])
            graded = data.get("satisfaction") is not None
            values = {
                "customer_id": call["customer_id"],
                # The touch point's channel is the contact's: phone, chat, email, ...
                "channel": call.get("channel") or "phone",
                "call_id": call_id,
                "agent": principal.username,
                "disposition": data.get("disposition"),
                "notes": data.get("notes"),
                "satisfaction": data.get("satisfaction"),
                "satisfaction_kind": (data.get("satisfaction_kind") or "agent") if graded else None,
                "offer_outcomes": list(data.get("offers") or []),
                "created_at": utcnow(),
            }
            try:
                # The call's queue is kept on the touch point for the call reports.
                row = {**values, "queue": call["queue"]}
                interaction_id = await repo.insert_interaction(session, row)
                await drafts.clear_draft(session, call_id, principal.username)
                # Journal back to the systems of record: in this same transaction.
                await outbox.enqueue_wrapup(session, self.sources, call, values)
                await session.commit()
            except IntegrityError as exc:
                await session.rollback()
                raise Conflict(f"call {call_id!r} is already wrapped up") from exc
        return {
            "id": interaction_id,
            **{k: v for k, v in values.items() if k != "created_at"},
            "created_at": values["created_at"].isoformat(),
        }

    async def queue_of_call(self, call_id: str) -> str | None:
        async with self.sessionmaker() as session:
            call = await repo.get_call(session, call_id)
        return call["queue"] if call else None

    async def calls_today(self, username: str) -> list[dict[str, Any]]:
        """The agent's calls since local midnight (``settings.timezone``), newest first."""
        async with self.sessionmaker() as session:
            rows = await repo.calls_for_agent_since(
                session, username, local_midnight(self.settings)
            )
        return [
            {
                "id": call["id"],
                "state": call["state"],
                "caller": caller_of(call),
                "caller_name": call["caller_name"],
                "queue": call["queue"],
                "customer_id": call["customer_id"],
                "customer_name": customer_name(call),
                "first_seen_at": _iso(call["first_seen_at"]),
                "answered_at": _iso(call["answered_at"]),
                "ended_at": _iso(call["ended_at"]),
                "wrapped_up": wrapped,
            }
            for call, wrapped in rows
        ]
