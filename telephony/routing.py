"""Routing hints in each provider's own form: what a PBX is told before it queues a call.

``RoutingHints`` is provider-neutral (computed by the app from the caller's profile:
``app.customers.routing``); the functions here only render it:

* ``as_json`` - the generic JSON object (``GET /telephony/lookup`` ``routing``);
* ``twilio_task`` - a TaskRouter ``<Task>`` (priority and task attributes) for
  ``<Enqueue workflowSid=…>`` (``telephony.twilio.twiml_enqueue``);
* ``asterisk_variables`` - ``KEY=value&KEY=value``, URI-encoded, which Asterisk's
  ``CURL()`` with ``CURLOPT(hashcompat)=yes`` turns into a ``HASH()`` and an AGI script
  reads with any query-string parser; ``QUEUE_PRIO`` is app_queue's own variable;
* ``connect_attributes`` - the flat string map an Amazon Connect flow's Lambda returns
  (``$.External.<key>``); Connect ranks 1 (highest) to 5 (its default).

Pure: no database, no settings; the app passes what it knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

ASTERISK_MEMBER = "PJSIP/{extension}"
"""Default app_queue member interface of the preferred agent (``{extension}``, ``{username}``)."""
CONNECT_DEFAULT_PRIORITY = 5
"""Amazon Connect's default routing priority (1 is the highest)."""


@dataclass(frozen=True, slots=True)
class PreferredAgent:
    """The agent to offer the call to first: the customer's account manager, as a user."""

    username: str
    extension: str | None = None
    worker_id: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingHints:
    """What the caller's profile says about routing the call.

    ``priority`` is a non-negative score, higher served first (TaskRouter's and app_queue's
    sense); ``reasons`` names what added to it; ``queue`` is the queue to use (a rule's, else
    the one the PBX would have used, else None); ``preferred_agent`` is tried first for
    ``fallback_after_s`` seconds, then anyone in the queue.
    """

    match: str = "none"
    customer_id: int | None = None
    name: str | None = None
    priority: int = 0
    reasons: tuple[str, ...] = ()
    value_tier: str | None = None
    at_risk: bool = False
    over_limit: bool = False
    account_manager: str | None = None
    preferred_agent: PreferredAgent | None = None
    fallback_after_s: int = 30
    language: str | None = None
    queue: str | None = None

    @property
    def connect_priority(self) -> int:
        """Amazon Connect's scale: every 10 points one step above its default 5, at most 1."""
        return max(1, CONNECT_DEFAULT_PRIORITY - self.priority // 10)


def as_json(hints: RoutingHints) -> dict[str, Any]:
    """The generic JSON form (``routing`` in the lookup answer)."""
    agent = hints.preferred_agent
    return {
        "priority": hints.priority,
        "reasons": list(hints.reasons),
        "value_tier": hints.value_tier,
        "at_risk": hints.at_risk,
        "over_limit": hints.over_limit,
        "account_manager": hints.account_manager,
        "preferred_agent": (
            {"username": agent.username, "extension": agent.extension, "worker_id": agent.worker_id}
            if agent is not None
            else None
        ),
        "fallback_after_s": hints.fallback_after_s if agent is not None else None,
        "language": hints.language,
        "queue": hints.queue,
    }


def twilio_task(hints: RoutingHints) -> tuple[int, dict[str, Any]]:
    """``(priority, attributes)`` of the TaskRouter task: the attributes a workflow filters
    on (``preferred_worker`` for ``known_worker_friendly_name``, ``preferred_worker_sid`` for
    ``known_worker_sid``). Twilio adds ``call_sid``, ``from`` and ``to`` itself."""
    agent = hints.preferred_agent
    attributes: dict[str, Any] = {
        "screenpop_match": hints.match,
        "priority_reasons": list(hints.reasons),
        "language": hints.language or "",
    }
    if hints.customer_id is not None:
        attributes["customer_id"] = str(hints.customer_id)
    if hints.value_tier:
        attributes["value_tier"] = hints.value_tier
    attributes["at_risk"] = hints.at_risk
    attributes["over_limit"] = hints.over_limit
    if hints.queue:
        attributes["suggested_queue"] = hints.queue
    # Always there ("" for nobody), so a workflow filter can test it: preferred_worker != ''
    attributes["preferred_worker"] = agent.username if agent else ""
    if agent is not None:
        attributes["fallback_after_s"] = hints.fallback_after_s
        if agent.worker_id:
            attributes["preferred_worker_sid"] = agent.worker_id
    return hints.priority, attributes


def asterisk_member(agent: PreferredAgent | None, template: str = ASTERISK_MEMBER) -> str:
    """The app_queue interface of the preferred agent (empty without one, or without the
    extension the template needs)."""
    if agent is None:
        return ""
    if "{extension}" in template and not agent.extension:
        return ""
    return template.format(extension=agent.extension or "", username=agent.username)


def asterisk_variables(hints: RoutingHints, member_template: str = ASTERISK_MEMBER) -> str:
    """``QUEUE_PRIO=…&SCREENPOP_…=…``: one line, every value URI-encoded (``%20``, never
    ``+``), in a fixed order; absent values are empty, so every key is always there."""
    agent = hints.preferred_agent
    pairs = [
        ("QUEUE_PRIO", str(hints.priority)),
        ("SCREENPOP_MATCH", hints.match),
        ("SCREENPOP_CUSTOMER_ID", str(hints.customer_id or "")),
        ("SCREENPOP_NAME", hints.name or ""),
        ("SCREENPOP_TIER", hints.value_tier or ""),
        ("SCREENPOP_LANGUAGE", hints.language or ""),
        ("SCREENPOP_QUEUE", hints.queue or ""),
        ("SCREENPOP_AGENT", agent.username if agent else ""),
        ("SCREENPOP_EXTENSION", (agent.extension or "") if agent else ""),
        ("SCREENPOP_MEMBER", asterisk_member(agent, member_template)),
        ("SCREENPOP_FALLBACK_S", str(hints.fallback_after_s) if agent else ""),
    ]
    return "&".join(f"{key}={quote(value, safe='')}" for key, value in pairs)


def connect_attributes(hints: RoutingHints) -> dict[str, str]:
    """The flat string map an Amazon Connect Lambda returns (Connect takes strings only)."""
    agent = hints.preferred_agent
    return {
        "screenpop_match": hints.match,
        "screenpop_customer_id": str(hints.customer_id or ""),
        "screenpop_name": hints.name or "",
        "screenpop_priority": str(hints.priority),
        "screenpop_connect_priority": str(hints.connect_priority),
        "screenpop_value_tier": hints.value_tier or "",
        "screenpop_at_risk": "true" if hints.at_risk else "false",
        "screenpop_over_limit": "true" if hints.over_limit else "false",
        "screenpop_language": hints.language or "",
        "screenpop_queue": hints.queue or "",
        "screenpop_preferred_agent": agent.username if agent else "",
        "screenpop_preferred_agent_id": (agent.worker_id or "") if agent else "",
        "screenpop_fallback_after_s": str(hints.fallback_after_s) if agent else "",
    }
