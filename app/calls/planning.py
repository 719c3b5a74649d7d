"""What one event changes: the planner shared by live events, replay and every store.

``Planner.plan(reads, event, row)`` takes the call's row as it stands (None: not seen yet) and
returns a ``Plan``: the call's columns to insert or set, the pop deliveries and profile-view
audit rows to write with them, and what to publish once they are committed. It only reads
(directory, first-sight match and profile); a store writes the plan (``app.calls.store``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import one_trip
from app.calls.directory import AgentRef, Directory, QueueRef
from app.calls.pop import document_from_profile, empty_document, state_message
from app.calls.state_machine import (
    AGENT_LIVE_STATES,
    FINAL_STATES,
    CallFacts,
    Outcome,
    Step,
    apply,
)
from app.customers import service as customers
from app.db import utcnow
from app.settings import Settings
from telephony.events import ACCOUNT_REF, CONTACT_EMAIL, TRANSFER_TO, CallerId, CallEvent

CallRow = dict[str, Any]


@dataclass(slots=True)
class Applied:
    """What one applied event changed, kept until the commit succeeded and it is published."""

    call: dict[str, Any]
    old_state: str | None
    event_kind: str
    occurred_at: datetime
    received_at: datetime
    withdrawn: tuple[str, ...]
    pushes: list[AgentRef] = field(default_factory=list)
    notes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    pending: bool = False  # the pop is partial: assemble the rest after the commit


@dataclass(slots=True)
class Plan:
    """One event's writes, computed before any is made."""

    applied: Applied
    call_id: str
    new: bool  # insert the call (else a versioned update from ``version``)
    version: int
    values: dict[str, Any]  # the call's columns to insert, or to set
    pushes: list[dict[str, Any]]  # pop_deliveries rows
    views: list[dict[str, Any]]  # profile_views (audit) rows


def facts_of(row: Mapping[str, Any] | None) -> CallFacts:
    """The state machine's view of a call row (a fresh call for None)."""
    if row is None:
        return CallFacts()
    return CallFacts(
        state=row["state"],
        agent=row["agent"],
        offered_to=tuple(row["offered_to"] or ()),
        queued_at=row["queued_at"],
        answered_at=row["answered_at"],
        ended_at=row["ended_at"],
        last_event_at=row["last_event_at"],
    )


def facts_values(facts: CallFacts) -> dict[str, Any]:
    return {
        "state": facts.state,
        "agent": facts.agent,
        "offered_to": list(facts.offered_to),
        "queued_at": facts.queued_at,
        "answered_at": facts.answered_at,
        "ended_at": facts.ended_at,
        "last_event_at": facts.last_event_at,
    }


def pop_targets(mode: str, before: CallFacts, outcome: Outcome) -> list[str]:
    """Agents who must get the pop now, by the queue's pop mode (offer, answer, off)."""
    after = outcome.facts
    if mode == "off" or after.state not in AGENT_LIVE_STATES:
        return []
    targets: list[str] = []
    if mode == "offer":
        targets.extend(outcome.offered)
        if outcome.answered_by and outcome.answered_by not in before.offered_to:
            # Answered without an offer we saw (out of order, or a provider that never
            # offers): the agent has no pop yet.
            targets.append(outcome.answered_by)
    elif outcome.answered_by:
        targets.append(outcome.answered_by)
    return list(dict.fromkeys(targets))


def withdraw_reason(outcome: Outcome, username: str) -> str:
    after = outcome.facts
    if outcome.transferred_from == username or (
        outcome.transferred_to and after.state in AGENT_LIVE_STATES
    ):
        return "transferred"
    if after.state in FINAL_STATES:
        return str(after.state)
    if after.agent:
        return "answered_elsewhere"
    return "offer_withdrawn"


def journal_record(event: CallEvent, received_at: datetime) -> dict[str, Any]:
    """The event's journal row (every column but ``id``)."""
    return {
        "call_id": event.full_call_id,
        "source": event.source,
        "event_id": event.event_id,
        "kind": event.kind,
        "occurred_at": event.occurred_at,
        "received_at": received_at,
        # Serialised once by pydantic-core; the JSON column's serialiser (orjson) embeds it.
        "event": orjson.Fragment(event.model_dump_json(exclude={"raw"})),
        "raw": event.raw,
        "applied": True,
    }


def account_ref_of(event: CallEvent) -> str | None:
    value = event.attributes.get(ACCOUNT_REF)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def email_of(event: CallEvent) -> str | None:
    """The contact's email address (chat and email contacts), or None."""
    value = event.attributes.get(CONTACT_EMAIL)
    return (value.strip().lower() or None) if isinstance(value, str) else None


def notes_for(
    call_id: str, before: CallFacts, outcome: Outcome, pushed: set[str]
) -> list[tuple[str, dict[str, Any]]]:
    """``call.state`` messages: to agents who lose the call, and to those who keep it."""
    after = outcome.facts
    state = str(after.state)
    notes = [
        (u, state_message(call_id, state, withdrawn=True, reason=withdraw_reason(outcome, u)))
        for u in outcome.withdrawn
        if u not in pushed
    ]
    if after.state != before.state or outcome.transferred_to:
        keepers = [u for u in (after.agent, *after.offered_to) if u]
        for u in dict.fromkeys(keepers):
            if u not in pushed and u not in outcome.withdrawn:
                notes.append((u, state_message(call_id, state)))
    return notes


def push_rows(
    call: Mapping[str, Any], targets: Iterable[AgentRef], *, reason: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Delivery rows and one profile-view audit row per push. Receipts come with the acks;
    the latency once the pop is written to the agent's socket (``ReceiptWriter.add_written``)."""
    # In username order: the receipts batch locks delivery rows in key order too, so the
    # two never take the same rows' locks in opposite orders (a deadlock).
    targets = sorted(targets, key=lambda ref: ref.username)
    if not targets:
        return [], []
    now = utcnow()
    pushes = [
        {
            "call_id": call["id"],
            "username": ref.username,
            "version": int(call.get("pop_version") or 0),
            "pushed_at": now,
            "delivered_at": None,
            "seen_at": None,
        }
        for ref in targets
    ]
    customer_id = call.get("customer_id")
    views = (
        []
        if customer_id is None
        else customers.profile_view_rows(
            usernames=[ref.username for ref in targets],
            customer_id=int(customer_id),
            call_id=str(call["id"]),
            reason=reason,
            viewed_at=now,
        )
    )
    return pushes, views


class Planner:
    """Plans events for one process: the directory it reads and the pop budget it keeps."""

    def __init__(self, settings: Settings, directory: Directory) -> None:
        self.settings = settings
        self.directory = directory

    async def step(
        self, session: AsyncSession, event: CallEvent
    ) -> tuple[Step, dict[str, AgentRef]]:
        """The state machine's input, agents resolved to usernames; and the refs by username."""
        refs: dict[str, AgentRef] = {}
        agent = await self.directory.agent(session, event.agent)
        if agent is not None:
            refs[agent.username] = agent
        target_ident = event.attributes.get(TRANSFER_TO)
        target = None
        if target_ident not in (None, "") and not isinstance(target_ident, dict | list):
            target = await self.directory.agent(session, str(target_ident))
        if target is not None:
            refs[target.username] = target
        step = Step(
            kind=event.kind,
            occurred_at=event.occurred_at,
            agent=agent.username if agent else None,
            withdrawn=event.offer_withdrawn,
            transfer_to=target.username if target else None,
        )
        return step, refs

    async def queue(
        self, session: AsyncSession, event: CallEvent, row: CallRow | None
    ) -> QueueRef | None:
        """The call's queue: the row's, else the one the event names or owns its number."""
        if row is not None and row["queue"] is not None:
            return await self.directory.queue(session, row["queue"])
        if event.queue:
            return await self.directory.queue(session, event.queue)
        if event.dialed:
            return await self.directory.queue_for_number(session, event.dialed)
        return None

    async def plan(
        self,
        session: AsyncSession,
        event: CallEvent,
        row: CallRow | None,
        *,
        received_at: datetime,
        started: float,
        publish: bool = True,
    ) -> Plan:
        """What ``event`` changes, given the call's ``row`` (None: not seen yet); reads only.
        ``publish`` False (replay): no pushes, audit rows or messages are planned."""
        step, refs = await self.step(session, event)
        before = facts_of(row)
        outcome = apply(before, step)
        values = facts_values(outcome.facts)
        queue = await self.queue(session, event, row)
        if queue is not None and (row is None or row["queue"] is None):
            values["queue"] = queue.name
        new_caller = self._caller_values(event, row, values)
        pending = await self._match_values(
            session, event, row, outcome, new_caller, values, started
        )
        self._transfer_values(event, row, outcome, values)
        call = self._call(event, row, values, received_at)
        applied = Applied(
            call=call,
            old_state=before.state,
            event_kind=event.kind,
            occurred_at=event.occurred_at,
            received_at=received_at,
            withdrawn=outcome.withdrawn,
            pending=pending,
        )
        pushes: list[dict[str, Any]] = []
        views: list[dict[str, Any]] = []
        if publish:
            mode = queue.pop_mode if queue is not None else "offer"
            for username in pop_targets(mode, before, outcome):
                ref = refs.get(username) or await self.directory.agent(session, username)
                if ref is not None and ref.known:
                    applied.pushes.append(ref)
            if applied.pushes:
                one_trip.with_pop(call)  # the pop goes out: decode the stored document now
            pushes, views = push_rows(call, applied.pushes, reason="pop")
            pushed = {r.username for r in applied.pushes}
            applied.notes = notes_for(call["id"], before, outcome, pushed)
        return Plan(
            applied=applied,
            call_id=event.full_call_id,
            new=row is None,
            version=row["version"] if row is not None else 0,
            values=values,
            pushes=pushes,
            views=views,
        )

    @staticmethod
    def _caller_values(event: CallEvent, row: CallRow | None, values: dict[str, Any]) -> bool:
        """Caller, name and dialed number where the row has none yet; True for a new caller.

        An empty caller (a provider's agent leg, say) is not an answer: a later event's
        number replaces it. "anonymous" and the like are an answer (withheld)."""
        new_caller = row is not None and not row["caller_raw"] and bool(event.caller.raw)
        if row is None or new_caller:
            values.update(
                caller_raw=event.caller.raw,
                caller_e164=event.caller.e164,
                caller_withheld=event.caller.withheld,
            )
        if event.caller_name and (row is None or not row["caller_name"]):
            values["caller_name"] = event.caller_name
        if event.dialed and (row is None or not row["dialed"]):
            values["dialed"] = event.dialed
        return new_caller

    async def _match_values(
        self,
        session: AsyncSession,
        event: CallEvent,
        row: CallRow | None,
        outcome: Outcome,
        new_caller: bool,
        values: dict[str, Any],
        started: float,
    ) -> bool:
        """Resolve at first sight; again when the caller's number or an IVR account number
        arrives later and the first answer was not a single customer. True when the pop is
        partial (the rest follows after the commit)."""
        account_ref = account_ref_of(event)
        email = email_of(event)
        old_match = (row["match"] if row else None) or {}
        resolve = row is None or (
            old_match.get("kind") != "single"
            and (
                new_caller
                or (account_ref and account_ref != old_match.get("account_ref"))
                or (email and email != old_match.get("email"))
            )
        )
        if not resolve or (row is not None and outcome.facts.state in FINAL_STATES):
            return False
        caller = (
            event.caller
            if row is None or new_caller
            else CallerId(
                raw=row["caller_raw"],
                e164=row["caller_e164"],
                withheld=row["caller_withheld"],
                valid=row["caller_e164"] is not None,
            )
        )
        match, doc, pending = await self.first_sight(
            session, caller, account_ref, started, email=email
        )
        values.update(
            match=match.as_dict(),
            customer_id=match.customer_id,
            pop=doc,
            pop_version=(row["pop_version"] if row else 0) + 1,
        )
        return pending

    @staticmethod
    def _transfer_values(
        event: CallEvent, row: CallRow | None, outcome: Outcome, values: dict[str, Any]
    ) -> None:
        """A transfer to a live agent: the pop carries who from, to whom, and the notes."""
        if not (outcome.transferred_to and outcome.facts.state in AGENT_LIVE_STATES):
            return
        if row is not None:
            one_trip.with_pop(row)
        doc = dict(
            values.get("pop") or (row["pop"] if row else None) or empty_document(complete=True)
        )
        doc["transfer"] = {
            "from": outcome.transferred_from,
            "to": outcome.transferred_to,
            "at": event.occurred_at.isoformat(),
            # Notes so far, when the transferring side sends them (attributes.notes).
            "notes": str(event.attributes.get("notes") or "") or None,
        }
        values["pop"] = doc
        values["pop_version"] = (
            int(values.get("pop_version") or (row["pop_version"] if row else 0)) + 1
        )

    @staticmethod
    def _call(
        event: CallEvent, row: CallRow | None, values: dict[str, Any], received_at: datetime
    ) -> dict[str, Any]:
        """The call as it will be once written (``values`` completed for a new call)."""
        if row is None:
            values.update(
                id=event.full_call_id,
                source=event.source,
                channel=event.channel,
                first_seen_at=received_at,
                version=1,
            )
            values.setdefault("match", {"kind": "none", "candidates": []})
            values.setdefault("pop_version", 0)
            values.setdefault("offered_to", [])
            return values
        values["version"] = row["version"] + 1
        return {**row, **values}

    async def first_sight(
        self,
        session: AsyncSession,
        caller: CallerId,
        account_ref: str | None,
        started: float,
        *,
        email: str | None = None,
    ) -> tuple[customers.Match, dict[str, Any], bool]:
        """Match the caller and build the pop document; True when the rest must follow.

        When the budget is already spent once the caller is matched, the document holds
        identity and balance (one query) and the full profile is assembled after the commit,
        as a ``pop.update``.
        """
        match = await customers.resolve_caller(
            session,
            caller,
            account_ref=account_ref,
            email=email,
            default_region=self.settings.default_region,
        )
        if match.customer_id is None:
            return match, empty_document(complete=True), False
        remaining = self.settings.pop_budget_ms / 1000 - (time.perf_counter() - started)
        if remaining > 0:
            profile = await customers.assemble_profile(
                session,
                match.customer_id,
                decline_suppress_days=self.settings.decline_suppress_days,
            )
            return match, document_from_profile(profile, complete=True), False
        identity = await customers.assemble_identity(session, match.customer_id)
        return match, document_from_profile(identity, complete=False), True
