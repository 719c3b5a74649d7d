"""A scripted stand-in for the calls domain's ingest: events go through the calls domain's own
state machine (``app.calls.state_machine``); we keep the ``call.change`` and ``pop.pushed``
messages it would publish (per the contract in the brief) and the rows it would leave in
``calls``, ``call_events`` and ``pop_deliveries`` — so a recorded day can be folded live and
rebuilt from the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import state_machine
from app.calls.models import Call, CallEventRecord, PopDelivery
from app.calls.state_machine import CallFacts, Step
from app.customers.numbers import national_format


@dataclass
class ScriptedCall:
    id: str
    queue: str | None
    caller: str
    match_kind: str
    customer_name: str | None
    value_tier: str | None
    facts: CallFacts = field(default_factory=CallFacts)
    first_seen_at: datetime | None = None

    @property
    def state(self) -> str:
        return self.facts.state or "queued"


class Switchboard:
    """Applies events with the calls domain's own state machine; keeps messages, journal, pops."""

    def __init__(self, extensions: dict[str, str] | None = None) -> None:
        # Agents as the PBX names them in the journal (username -> extension).
        self.extensions = extensions or {}
        self.calls: dict[str, ScriptedCall] = {}
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.journal: list[dict[str, Any]] = []
        self.pops: dict[tuple[str, str], dict[str, Any]] = {}
        self._event_no = 0

    def _raw(self, agent: str | None) -> str | None:
        return self.extensions.get(agent, agent) if agent else None

    def _step(self, call: ScriptedCall, step: Step) -> None:
        self._event_no += 1
        attributes: dict[str, Any] = {}
        if step.withdrawn:
            attributes["offer_withdrawn"] = True
        if step.transfer_to:
            attributes["transfer_to"] = self._raw(step.transfer_to)
        self.journal.append(
            {
                "call_id": call.id,
                "event_id": f"e{self._event_no}",
                "kind": step.kind,
                "occurred_at": step.occurred_at,
                "event": {
                    "kind": step.kind,
                    "agent": self._raw(step.agent),
                    "attributes": attributes,
                    "occurred_at": step.occurred_at.isoformat(),
                },
            }
        )
        old = call.facts.state
        outcome = state_machine.apply(call.facts, step)
        call.facts = f = outcome.facts
        iso = lambda t: t.isoformat() if t else None  # noqa: E731
        self.messages.append(
            (
                "calls",
                {
                    "type": "call.change",
                    "call_id": call.id,
                    "event_kind": step.kind,
                    "occurred_at": step.occurred_at.isoformat(),
                    "received_at": step.occurred_at.isoformat(),
                    "old_state": old,
                    "state": f.state,
                    "queue": call.queue,
                    "agent": f.agent,
                    "offered_to": list(f.offered_to),
                    "withdrawn_from": list(outcome.withdrawn),
                    "caller": {
                        "raw": call.caller,
                        "e164": call.caller,
                        "national": national_format(call.caller),
                        "withheld": False,
                    },
                    "customer_id": None,
                    "customer_name": call.customer_name,
                    "value_tier": call.value_tier,
                    "match_kind": call.match_kind,
                    "queued_at": iso(f.queued_at),
                    "answered_at": iso(f.answered_at),
                    "ended_at": iso(f.ended_at),
                },
            )
        )

    def queued(
        self,
        call_id: str,
        at: datetime,
        queue: str | None,
        *,
        caller: str = "+447700900001",
        match_kind: str = "single",
        customer_name: str | None = "Ada Lovelace",
        value_tier: str | None = "high",
    ) -> None:
        call = ScriptedCall(call_id, queue, caller, match_kind, customer_name, value_tier)
        call.first_seen_at = at
        self.calls[call_id] = call
        self._step(call, Step("queued", at))

    def offered(
        self, call_id: str, at: datetime, agent: str, latency_ms: float | None = None
    ) -> None:
        call = self.calls[call_id]
        self._step(call, Step("offered", at, agent=agent))
        if latency_ms is not None:
            self.pops[(call_id, agent)] = {"latency_ms": latency_ms, "pushed_at": at}
            self.messages.append(
                (
                    "calls",
                    {
                        "type": "pop.pushed",
                        "call_id": call_id,
                        "agent": agent,
                        "queue": call.queue,
                        "match_kind": call.match_kind,
                        "latency_ms": latency_ms,
                    },
                )
            )

    def withdrawn(self, call_id: str, at: datetime, agent: str) -> None:
        """Ring-no-answer: the offer to ``agent`` ends, the call stays in the queue."""
        self._step(self.calls[call_id], Step("queued", at, agent=agent, withdrawn=True))

    def answered(self, call_id: str, at: datetime, agent: str) -> None:
        self._step(self.calls[call_id], Step("answered", at, agent=agent))

    def transferred(self, call_id: str, at: datetime, to: str) -> None:
        """A connected call moves to ``to`` at once; a ringing one rings ``to`` instead."""
        self._step(self.calls[call_id], Step("transferred", at, transfer_to=to))

    def ended(self, call_id: str, at: datetime) -> None:
        """The caller (or agent) hung up; never answered gives abandoned."""
        self._step(self.calls[call_id], Step("ended", at))

    async def store(self, session: AsyncSession) -> None:
        """Write what the calls domain would have committed: calls, journal, pop receipts."""
        for call in self.calls.values():
            f = call.facts
            pop: dict[str, Any] = {
                "customer": {"name": call.customer_name} if call.customer_name else None,
                "insights": {"value_tier": call.value_tier} if call.value_tier else None,
            }
            session.add(
                Call(
                    id=call.id,
                    source="generic",
                    state=call.state,
                    caller_raw=call.caller,
                    caller_e164=call.caller,
                    caller_withheld=False,
                    queue=call.queue,
                    agent=f.agent,
                    offered_to=list(f.offered_to),
                    match={"kind": call.match_kind},
                    pop=pop,
                    first_seen_at=call.first_seen_at,
                    queued_at=f.queued_at,
                    answered_at=f.answered_at,
                    ended_at=f.ended_at,
                )
            )
        for entry in self.journal:
            session.add(
                CallEventRecord(
                    call_id=entry["call_id"],
                    source="generic",
                    event_id=entry["event_id"],
                    kind=entry["kind"],
                    occurred_at=entry["occurred_at"],
                    received_at=entry["occurred_at"],
                    event=entry["event"],
                    raw={},
                )
            )
        for (call_id, agent), pop in self.pops.items():
            session.add(
                PopDelivery(
                    call_id=call_id,
                    username=agent,
                    version=1,
                    pushed_at=pop["pushed_at"],
                    latency_ms=pop["latency_ms"],
                )
            )
        await session.flush()
