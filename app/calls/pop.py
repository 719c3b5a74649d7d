"""The pop: the document kept on a call, and the messages an agent's screen receives.

The document (``Call.pop``) is built once, at the call's first sight, from the customers
domain; pushing it is then a matter of wrapping it with the call's current state. Messages:

* ``{"type": "pop", "version", "call": {...}, "match": {...}, "customer", "account",
  "loyalty", "purchases", "insights", "next_needs", "interactions", "treatment", "transfer",
  "complete", "as_of", "sources", "extras"}`` - the whole pop (``complete`` False: the slow
  parts follow; ``sources``/``extras``: parts from systems of record, app/sources);
* ``{"type": "pop.update", ...}`` - the same shape, a newer ``version`` of the same call;
* ``{"type": "call.state", "call_id", "state", "withdrawn", "reason"}`` - the call moved on;
  ``withdrawn`` True means this agent no longer has the call (answered elsewhere,
  transferred away, abandoned, offer timed out);
* ``{"type": "call.change", ...}`` on the ``calls`` channel - the call as committed, for
  queue statistics and other instances.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.customers import service as customers
from app.customers.numbers import national_format
from app.settings import Settings
from app.sources.pop_parts import with_live

PROFILE_KEYS = (
    "customer", "account", "loyalty", "purchases", "insights", "next_needs", "interactions",
)  # fmt: skip


def empty_document(*, complete: bool) -> dict[str, Any]:
    """A pop document with no customer (no match, several, withheld)."""
    return {
        "customer": None,
        "account": None,
        "loyalty": None,
        "purchases": [],
        "insights": None,
        "next_needs": [],
        "interactions": [],
        "treatment": None,
        "complete": complete,
    }


def document_from_profile(profile: Mapping[str, Any], *, complete: bool) -> dict[str, Any]:
    """A pop document from ``assemble_profile`` (complete) or ``assemble_identity`` output."""
    doc = empty_document(complete=complete)
    for key in (*PROFILE_KEYS, "treatment", "as_of", "sources", "extras"):
        if key in profile and profile[key] is not None:
            doc[key] = profile[key]
    return doc


def caller_of(call: Mapping[str, Any]) -> dict[str, Any]:
    """The caller as every document shows it; ``national`` is the number as its own country
    writes it (what an agent reads aloud), E.164 stays the identity."""
    return {
        "raw": call.get("caller_raw") or "",
        "e164": call.get("caller_e164"),
        "national": national_format(call.get("caller_e164")),
        "withheld": bool(call.get("caller_withheld")),
    }


def call_summary(call: Mapping[str, Any]) -> dict[str, Any]:
    """The ``call`` object of a pop."""
    return {
        "id": call["id"],
        "channel": call.get("channel") or "phone",
        "state": call["state"],
        "caller": caller_of(call),
        "caller_name": call.get("caller_name"),
        "dialed": call.get("dialed"),
        "queue": call.get("queue"),
        "agent": call.get("agent"),
        "offered_to": list(call.get("offered_to") or []),
        "first_seen_at": _iso(call.get("first_seen_at")),
        "answered_at": _iso(call.get("answered_at")),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def pop_message(
    call: Mapping[str, Any], *, role: str, settings: Settings, kind: str = "pop"
) -> dict[str, Any]:
    """The ``pop`` (or ``pop.update``) message for an agent of ``role``, money masked by role."""
    # Parts from systems of record, stored raw on the call, merged here for every producer.
    doc = with_live(call.get("pop") or empty_document(complete=True))
    message: dict[str, Any] = {
        "type": kind,
        "version": int(call.get("pop_version") or 0),
        "call": call_summary(call),
        "match": call.get("match") or {"kind": "none", "candidates": []},
        "customer": doc.get("customer"),
        "account": doc.get("account"),
        "loyalty": doc.get("loyalty"),
        "purchases": doc.get("purchases") or [],
        "insights": doc.get("insights"),
        "next_needs": doc.get("next_needs") or [],
        "interactions": doc.get("interactions") or [],
        "treatment": doc.get("treatment"),
        "transfer": doc.get("transfer"),
        "complete": bool(doc.get("complete", True)),
        "as_of": doc.get("as_of"),
        # Parts from systems of record (app/sources/pop_parts.py): which, and how fresh.
        "sources": doc.get("sources") or [],
        "extras": doc.get("extras") or {},
    }
    return customers.mask_profile(message, role, settings)


def state_message(
    call_id: str, state: str, *, withdrawn: bool = False, reason: str | None = None
) -> dict[str, Any]:
    """A ``call.state`` message for one agent."""
    message: dict[str, Any] = {
        "type": "call.state",
        "call_id": call_id,
        "state": state,
        "withdrawn": withdrawn,
    }
    if reason:
        message["reason"] = reason
    return message


def customer_name(call: Mapping[str, Any]) -> str | None:
    if "pop" not in call:  # a row read without its document (app.calls.one_trip.read)
        return call.get("pop_customer_name")
    customer = (call.get("pop") or {}).get("customer")
    return customer.get("name") if isinstance(customer, dict) else None


def value_tier(call: Mapping[str, Any]) -> str | None:
    if "pop" not in call:
        return call.get("pop_value_tier")
    insights = (call.get("pop") or {}).get("insights")
    return insights.get("value_tier") if isinstance(insights, dict) else None


def change_message(
    call: Mapping[str, Any],
    *,
    event_kind: str,
    occurred_at: datetime,
    received_at: datetime,
    old_state: str | None,
    withdrawn: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The ``call.change`` message (the ``calls`` channel): the call as committed, and what
    moved it. Queue statistics fold it (``app.queues.call_view.CallView.from_message``)."""
    return {
        "type": "call.change",
        "call_id": call["id"],
        "version": call["version"],
        "channel": call.get("channel") or "phone",
        "event_kind": event_kind,
        "occurred_at": occurred_at.isoformat(),
        "received_at": received_at.isoformat(),
        "old_state": old_state,
        "state": call["state"],
        "queue": call.get("queue"),
        "agent": call.get("agent"),
        "offered_to": list(call.get("offered_to") or []),
        "withdrawn_from": list(withdrawn),
        "caller": caller_of(call),
        "customer_id": call.get("customer_id"),
        "customer_name": customer_name(call),
        "value_tier": value_tier(call),
        "match_kind": (call.get("match") or {}).get("kind"),
        "queued_at": _iso(call.get("queued_at")),
        "answered_at": _iso(call.get("answered_at")),
        "ended_at": _iso(call.get("ended_at")),
    }
