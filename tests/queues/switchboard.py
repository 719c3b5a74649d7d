"""A scripted stand-in for the calls domain: the ``call.change`` and ``pop.pushed`` messages it
publishes (per the contract in the brief) and the rows it leaves in ``calls``, ``call_events``
and ``pop_deliveries`` — so a recorded day can be folded live and rebuilt from the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import Call, CallEventRecord, PopDelivery


@dataclass
class ScriptedCall:
    id: str
    queue: str
    caller: str
    match_kind: str
    customer_name: str | None
    value_tier: str | None
    state: str = "queued"
    agent: str | None = None
    offered_to: list[str] = field(default_factory=list)
    first_seen_at: datetime | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None


class Switchboard:
    """Plays events as the calls domain would apply them; keeps messages, journal and pops."""

    def __init__(self, extensions: dict[str, str] | None = None) -> None:
        # Agents as the PBX names them in the journal (username -> extension).
        self.extensions = extensions or {}
        self.calls: dict[str, ScriptedCall] = {}
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.journal: list[dict[str, Any]] = []
        self.pops: dict[tuple[str, str], dict[str, Any]] = {}
        self._event_no = 0

    def _emit(
        self,
        call: ScriptedCall,
        kind: str,
        at: datetime,
        old_state: str | None,
        *,
        withdrawn: list[str] | None = None,
        raw_agent: str | None = None,
    ) -> dict[str, Any]:
        self._event_no += 1
        self.journal.append(
            {
                "call_id": call.id,
                "event_id": f"e{self._event_no}",
                "kind": kind,
                "occurred_at": at,
                "agent": self.extensions.get(raw_agent, raw_agent) if raw_agent else None,
            }
        )
        message = {
            "type": "call.change",
            "call_id": call.id,
            "event_kind": kind,
            "occurred_at": at.isoformat(),
            "received_at": at.isoformat(),
            "old_state": old_state,
            "state": call.state,
            "queue": call.queue,
            "agent": call.agent,
            "offered_to": list(call.offered_to),
            "withdrawn_from": list(withdrawn or []),
            "caller": {"raw": call.caller, "e164": call.caller, "withheld": False},
            "customer_id": None,
            "customer_name": call.customer_name,
            "value_tier": call.value_tier,
            "match_kind": call.match_kind,
            "queued_at": call.queued_at.isoformat() if call.queued_at else None,
            "answered_at": call.answered_at.isoformat() if call.answered_at else None,
            "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        }
        self.messages.append(("calls", message))
        return message

    def queued(
        self,
        call_id: str,
        at: datetime,
        queue: str,
        *,
        caller: str = "+447700900001",
        match_kind: str = "single",
        customer_name: str | None = "Ada Lovelace",
        value_tier: str | None = "high",
    ) -> None:
        call = ScriptedCall(call_id, queue, caller, match_kind, customer_name, value_tier)
        call.first_seen_at = call.queued_at = at
        self.calls[call_id] = call
        self._emit(call, "queued", at, None)

    def offered(
        self, call_id: str, at: datetime, agent: str, latency_ms: float | None = None
    ) -> None:
        call = self.calls[call_id]
        old = call.state
        if agent not in call.offered_to:
            call.offered_to.append(agent)
        call.state = "ringing"
        self._emit(call, "offered", at, old, raw_agent=agent)
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
        call = self.calls[call_id]
        old = call.state
        call.offered_to.remove(agent)
        call.state = "ringing" if call.offered_to else "queued"
        self._emit(call, "queued", at, old, withdrawn=[agent], raw_agent=agent)

    def answered(self, call_id: str, at: datetime, agent: str) -> None:
        call = self.calls[call_id]
        old = call.state
        others = [a for a in call.offered_to if a != agent]
        call.offered_to = []
        call.agent = agent
        call.state = "answered"
        call.answered_at = call.answered_at or at
        self._emit(call, "answered", at, old, withdrawn=others, raw_agent=agent)

    def transferred(self, call_id: str, at: datetime, to: str) -> None:
        """Blind transfer: the first agent is free at once, the target rings."""
        call = self.calls[call_id]
        old = call.state
        call.agent = None
        call.offered_to = [to]
        call.state = "ringing"
        self._emit(call, "transferred", at, old)

    def ended(self, call_id: str, at: datetime) -> None:
        """The caller (or agent) hung up; never answered means abandoned."""
        call = self.calls[call_id]
        old = call.state
        withdrawn = list(call.offered_to)
        call.offered_to = []
        call.state = "ended" if call.answered_at else "abandoned"
        call.ended_at = at
        self._emit(call, "ended" if call.answered_at else "abandoned", at, old, withdrawn=withdrawn)

    async def store(self, session: AsyncSession, customer_ids: dict[str, int]) -> None:
        """Write what the calls domain would have committed: calls, journal, pop receipts."""
        for call in self.calls.values():
            session.add(
                Call(
                    id=call.id,
                    source="generic",
                    state=call.state,
                    caller_raw=call.caller,
                    caller_e164=call.caller,
                    caller_withheld=False,
                    queue=call.queue,
                    agent=call.agent,
                    offered_to=list(call.offered_to),
                    match={"kind": call.match_kind},
                    customer_id=customer_ids.get(call.customer_name or ""),
                    first_seen_at=call.first_seen_at,
                    queued_at=call.queued_at,
                    answered_at=call.answered_at,
                    ended_at=call.ended_at,
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
                    event={"agent": entry["agent"], "kind": entry["kind"]},
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
