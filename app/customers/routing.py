"""Routing hints from the caller's profile: priority, account manager, language, queue.

The rules live in ``SCREENPOP_ROUTING_FILE`` (TOML, every key optional; docs/routing.md);
without the file the defaults below apply. ``load_rules`` validates it at start and names the
key at fault. The hints are computed from the fast part of the profile
(``service.assemble_identity``: one query) and the users directory (one query when the
customer has an account manager):

* priority = ``base`` + the value tier's points + ``potential`` (low value now, growing
  fast) + ``at_risk`` (relationship stage ``dissolution``) + ``over_limit`` (balance over a
  credit limit above zero), never below 0;
* the preferred agent = the active user the customer's ``account_manager`` names (username,
  extension or worker id), tried first for ``fallback_after_s`` seconds;
* language = the customer's;
* queue = the first queue rule that applies (over limit, at risk, value tier, language),
  else the queue the PBX asked about (or the dialed number's), else none.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers import service
from app.users import directory
from telephony.events import QUEUE_MAX
from telephony.routing import ASTERISK_MEMBER, PreferredAgent, RoutingHints

TIERS = ("high", "medium", "low")
AT_RISK_STAGE = "dissolution"


class RoutingRulesError(ValueError):
    """The routing file cannot be used; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_tiers(value: Mapping[str, Any]) -> Mapping[str, Any]:
    unknown = sorted(set(value) - set(TIERS))
    if unknown:
        raise ValueError(f"unknown tier(s) {', '.join(unknown)}; tiers are {', '.join(TIERS)}")
    return value


def _queue_name(value: str) -> str:
    if not value.strip() or len(value) > QUEUE_MAX:
        raise ValueError(f"a queue name is 1 to {QUEUE_MAX} characters")
    return value


class PriorityRules(_Strict):
    """Points added up into the priority (higher is served first)."""

    base: int = Field(default=0, ge=-1000, le=1000)
    tiers: dict[str, int] = Field(default_factory=lambda: {"high": 30, "medium": 10, "low": 0})
    potential: int = Field(default=5, ge=-1000, le=1000)
    at_risk: int = Field(default=20, ge=-1000, le=1000)
    over_limit: int = Field(default=10, ge=-1000, le=1000)

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, value: dict[str, int]) -> dict[str, int]:
        _known_tiers(value)
        for tier, points in value.items():
            if not -1000 <= points <= 1000:
                raise ValueError(f"{tier}: points are between -1000 and 1000")
        return value


class PreferredAgentRules(_Strict):
    """The account manager first, then anyone after ``fallback_after_s`` seconds."""

    enabled: bool = True
    fallback_after_s: int = Field(default=30, ge=0, le=3600)


class QueueRules(_Strict):
    """A suggested queue: the first rule that applies, in the order of the fields."""

    over_limit: str | None = None
    at_risk: str | None = None
    tiers: dict[str, str] = Field(default_factory=dict)
    languages: dict[str, str] = Field(default_factory=dict)

    @field_validator("over_limit", "at_risk")
    @classmethod
    def _one(cls, value: str | None) -> str | None:
        return _queue_name(value) if value is not None else None

    @field_validator("tiers", "languages")
    @classmethod
    def _many(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if info.field_name == "tiers":
            _known_tiers(value)
        for name in value.values():
            _queue_name(name)
        return {k.lower() if info.field_name == "languages" else k: v for k, v in value.items()}


class AsteriskRules(_Strict):
    """How the preferred agent is named to app_queue: ``{extension}`` and ``{username}``."""

    member: str = ASTERISK_MEMBER

    @field_validator("member")
    @classmethod
    def _member(cls, value: str) -> str:
        try:
            value.format(extension="201", username="alice")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{value!r}: only {{extension}} and {{username}} may be used ({exc})"
            ) from None
        return value


class RoutingRules(_Strict):
    """The whole routing file; ``RoutingRules()`` is the documented defaults."""

    priority: PriorityRules = Field(default_factory=PriorityRules)
    preferred_agent: PreferredAgentRules = Field(default_factory=PreferredAgentRules)
    queues: QueueRules = Field(default_factory=QueueRules)
    asterisk: AsteriskRules = Field(default_factory=AsteriskRules)


def parse_rules(text: str) -> RoutingRules:
    """Validate a routing document (TOML text)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RoutingRulesError(f"not valid TOML: {exc}") from None
    try:
        return RoutingRules.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{where}: {message}" if where else message)
        raise RoutingRulesError("; ".join(dict.fromkeys(problems))) from None


def load_rules(path: Path | None) -> RoutingRules:
    """The rules of ``SCREENPOP_ROUTING_FILE``, or the defaults when it is unset."""
    if path is None:
        return RoutingRules()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutingRulesError(f"{path}: {exc.strerror or exc}") from None
    try:
        return parse_rules(text)
    except RoutingRulesError as exc:
        raise RoutingRulesError(f"{path}: {exc}") from None


def _over_limit(account: Mapping[str, Any] | None) -> bool:
    # The agent screen's rule: a limit above zero that the balance exceeds.
    if not account:
        return False
    balance, limit = account.get("balance"), account.get("credit_limit")
    return bool(balance is not None and limit is not None and 0 < limit < balance)


def _queue(
    rules: QueueRules, *, tier: str | None, at_risk: bool, over_limit: bool, language: str | None
) -> str | None:
    if over_limit and rules.over_limit:
        return rules.over_limit
    if at_risk and rules.at_risk:
        return rules.at_risk
    if tier and tier in rules.tiers:
        return rules.tiers[tier]
    if language:
        return rules.languages.get(language.lower())
    return None


def compute_hints(
    identity: Mapping[str, Any],
    rules: RoutingRules,
    agent: PreferredAgent | None,
    *,
    match: str = "single",
    default_queue: str | None = None,
) -> RoutingHints:
    """The hints for one customer, from ``assemble_identity``'s document (pure)."""
    customer = identity["customer"]
    insights = identity.get("insights") or {}
    points = rules.priority
    priority, reasons = points.base, list[str]()
    tier = insights.get("value_tier")
    if tier and points.tiers.get(tier):
        priority += points.tiers[tier]
        reasons.append(f"tier:{tier}")
    if insights.get("potential") and points.potential:
        priority += points.potential
        reasons.append("potential")
    at_risk = insights.get("stage") == AT_RISK_STAGE
    if at_risk and points.at_risk:
        priority += points.at_risk
        reasons.append("at_risk")
    over_limit = _over_limit(identity.get("account"))
    if over_limit and points.over_limit:
        priority += points.over_limit
        reasons.append("over_limit")
    language = customer.get("language") or None
    queue = _queue(
        rules.queues, tier=tier, at_risk=at_risk, over_limit=over_limit, language=language
    )
    return RoutingHints(
        match=match,
        customer_id=customer["id"],
        name=customer.get("name"),
        priority=max(0, priority),
        reasons=tuple(reasons),
        value_tier=tier,
        at_risk=at_risk,
        over_limit=over_limit,
        account_manager=customer.get("account_manager"),
        preferred_agent=agent,
        fallback_after_s=rules.preferred_agent.fallback_after_s,
        language=language,
        queue=queue or default_queue,
    )


def unmatched_hints(
    rules: RoutingRules, *, match: str, default_queue: str | None = None
) -> RoutingHints:
    """The hints for a caller screenpop does not know (or a withheld number)."""
    return RoutingHints(
        match=match,
        priority=max(0, rules.priority.base),
        fallback_after_s=rules.preferred_agent.fallback_after_s,
        queue=default_queue,
    )


async def hints_for_customer(
    session: AsyncSession,
    customer_id: int,
    rules: RoutingRules,
    *,
    match: str = "single",
    default_queue: str | None = None,
) -> RoutingHints:
    """The hints for a known customer (``NotFound`` for an unknown id)."""
    identity = await service.assemble_identity(session, customer_id)
    manager = identity["customer"].get("account_manager")
    agent = None
    if manager and rules.preferred_agent.enabled:
        contact = await directory.agent_contact(session, manager)
        if contact is not None:
            agent = PreferredAgent(contact.username, contact.extension, contact.worker_id)
    return compute_hints(identity, rules, agent, match=match, default_queue=default_queue)
