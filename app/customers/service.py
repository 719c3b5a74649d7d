"""Who is calling and what matters about them: caller matching and the profile document.

Matching (``resolve_caller``), in order:

1. an IVR-entered ``account_ref`` (a customer's ``external_ref``, else an account id) when the
   event carries one: ``single``, ``matched_by="account_ref"``;
2. the contact's email address (chat and email contacts), case-insensitive on
   ``customers.email``: ``single`` or ``multiple``, ``matched_by="email"``;
3. withheld caller without a usable ``account_ref``: ``withheld``; never looked up by number;
4. exact E.164 on ``customer_phones.e164``;
5. else the last 9 digits on ``customer_phones.last_digits`` (stored numbers in bad formats);
6. nothing: ``none``, with what the number itself says (country, region, place, kind).

Several customers are ``multiple``, ranked: the customer an agent chose before for this
number first, then the most recent activity (latest order or touch point).

The profile document (``assemble_profile``) is plain JSON: timestamps are ISO 8601 strings in
UTC, ``customer.since`` an ISO date, money and prices are floats (two decimals for money).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.customers import repository as repo
from app.customers.feedback import DECLINE_SUPPRESS_DAYS, apply_feedback
from app.customers.loyalty import profile_loyalty
from app.customers.numbers import number_info
from app.customers.profile_query import ProfileRows, profile_rows
from app.db import utcnow
from app.errors import Invalid, NotFound
from app.settings import Settings
from telephony.callerid import normalise
from telephony.events import CallerId

LAST_DIGITS = 9
MASKED_ACCOUNT_FIELDS = ("balance", "credit_limit", "available_credit", "overdue")
# Recency halves a candidate's score every this many days behind the most recent candidate.
RECENCY_HALF_LIFE_DAYS = 90.0


@dataclass(frozen=True)
class Match:
    """The outcome of matching a caller; ``as_dict()`` is the pop's ``match`` object.

    ``candidates`` is ranked best first; it holds every customer found (so one for
    ``single``), each ``{"id", "name", "external_ref", "customer_type", "last_order_at",
    "last_contact_at", "chosen_before", "score"}``. ``info`` holds ``matched_by``
    (``e164``/``last_digits``/``account_ref``) for matches, the number's details for ``none``
    and ``account_ref`` for ``withheld``.
    """

    kind: str  # "single" | "multiple" | "none" | "withheld"
    customer_id: int | None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "customer_id": self.customer_id,
            "candidates": [dict(c) for c in self.candidates],
            **self.info,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _money(value: Decimal | float | int | None) -> float | None:
    return round(float(value), 2) if value is not None else None


def _number(value: Decimal | float | int | None) -> float | None:
    return float(value) if value is not None else None


def digits_of(text: str | None) -> str:
    return "".join(ch for ch in text or "" if ch.isdigit())


# --- matching -------------------------------------------------------------------------------


def _rank(rows: Any) -> list[dict[str, Any]]:
    """Candidates best first: remembered choice, then latest activity; with a 0..1 score."""
    candidates = []
    for row in rows:
        activity = max(
            (t for t in (row.last_order_at, row.last_contact_at) if t is not None),
            default=None,
        )
        candidates.append(
            {
                "id": row.id,
                "name": row.name,
                "external_ref": row.external_ref,
                "customer_type": row.customer_type,
                "last_order_at": _iso(row.last_order_at),
                "last_contact_at": _iso(row.last_contact_at),
                "chosen_before": bool(row.chosen_before),
                "_activity": activity,
            }
        )
    floor = datetime.min.replace(tzinfo=UTC)
    candidates.sort(key=lambda c: (c["chosen_before"], c["_activity"] or floor), reverse=True)
    newest = max((c["_activity"] for c in candidates if c["_activity"]), default=None)
    for c in candidates:
        activity = c.pop("_activity")
        recency = 0.0
        if activity is not None and newest is not None:
            behind = (newest - activity).total_seconds() / 86400
            recency = 0.5 ** (behind / RECENCY_HALF_LIFE_DAYS)
        c["score"] = round((0.5 if c["chosen_before"] else 0.0) + 0.5 * recency, 3)
    if len(candidates) == 1:
        candidates[0]["score"] = 1.0
    return candidates


async def _by_account_ref(session: AsyncSession, ref: str) -> int | None:
    customer_id = await repo.customer_id_by_external_ref(session, ref)
    if customer_id is None and ref.isdigit() and len(ref) < 19:
        customer_id = await repo.customer_id_by_account_id(session, int(ref))
    return customer_id


async def _by_email(session: AsyncSession, email: str, e164: str | None, ref: str) -> Match | None:
    """The customers with this email address (``single`` or ``multiple``), None if nobody."""
    ids = await repo.customer_ids_by_email(session, email)
    if not ids:
        return None
    candidates = _rank(await repo.candidates_by_ids(session, ids, e164))
    info: dict[str, Any] = {"matched_by": "email", "email": email}
    if ref:
        info["account_ref"] = ref
    if len(candidates) == 1:
        return Match("single", candidates[0]["id"], candidates, info)
    return Match("multiple", None, candidates, info)


def unmatchable(caller: CallerId) -> str | None:
    """Why no customer can ever match this number (withheld; neither a valid number nor
    ``LAST_DIGITS`` digits for the fallback), or None when ``resolve_caller`` may find one."""
    if caller.withheld:
        return "is a withheld caller, not a number"
    if caller.e164 is None and len(digits_of(caller.raw)) < LAST_DIGITS:
        return f"is not a phone number (not a valid number, nor {LAST_DIGITS} digits to match)"
    return None


async def resolve_caller(
    session: AsyncSession,
    caller: CallerId,
    *,
    account_ref: str | None = None,
    email: str | None = None,
    default_region: str = "GB",
) -> Match:
    """Match a caller to customers (see the module docstring for the rules). Read-only.

    With ``email``, the match says which address it was asked with (``info["email"]``),
    whatever it found: the call is not matched again for the same address."""
    address = email.strip().lower() if email else ""
    match = await _resolve(session, caller, account_ref, address, default_region)
    if address:
        match.info.setdefault("email", address)
    return match


async def _resolve(
    session: AsyncSession,
    caller: CallerId,
    account_ref: str | None,
    email: str,
    default_region: str,
) -> Match:
    ref = str(account_ref).strip() if account_ref is not None else ""
    e164 = caller.e164
    if e164 is None and not caller.withheld:
        # Callers built by hand may carry only the raw number: normalise it here.
        e164 = normalise(caller.raw, default_region).e164
    if ref:
        customer_id = await _by_account_ref(session, ref)
        if customer_id is not None:
            found = await repo.candidates_by_ids(session, [customer_id], e164)
            return Match(
                "single",
                customer_id,
                _rank(found),
                {"matched_by": "account_ref", "account_ref": ref},
            )
    if email:
        by_email = await _by_email(session, email, e164, ref)
        if by_email is not None:
            return by_email
    if caller.withheld:
        return Match("withheld", None, [], {"account_ref": ref or None})

    matched_by = "e164"
    rows: Any = []
    if e164 is not None:
        rows = await repo.candidates_by_e164(session, e164)
    if not rows:
        digits = digits_of(e164 or caller.raw)
        if len(digits) >= LAST_DIGITS:
            matched_by = "last_digits"
            rows = await repo.candidates_by_last_digits(session, digits[-LAST_DIGITS:], e164)
    if not rows:
        info = number_info(e164 or caller.raw or None, default_region=default_region)
        if ref:
            info["account_ref"] = ref
        return Match("none", None, [], info)

    candidates = _rank(rows)
    info = {"matched_by": matched_by}
    if ref:
        info["account_ref"] = ref
    if len(candidates) == 1:
        return Match("single", candidates[0]["id"], candidates, info)
    return Match("multiple", None, candidates, info)


async def find_by_external_ref(session: AsyncSession, external_ref: str) -> list[dict[str, Any]]:
    """Candidates (0 or 1) with this imported id."""
    customer_id = await repo.customer_id_by_external_ref(session, external_ref.strip())
    if customer_id is None:
        return []
    return _rank(await repo.candidates_by_ids(session, [customer_id]))


async def remember_choice(
    session: AsyncSession, *, e164: str, customer_id: int, username: str
) -> None:
    """Remember the customer an agent chose for a shared number: ranked first next time."""
    if not e164:
        raise Invalid("a number (E.164) is needed to remember a choice")
    if not await repo.customer_exists(session, customer_id):
        raise NotFound(f"customer {customer_id} not found")
    await repo.upsert_match_choice(
        session, e164=e164, customer_id=customer_id, username=username, chosen_at=utcnow()
    )


# --- profile --------------------------------------------------------------------------------


def _identity(rows: Any) -> dict[str, Any]:
    """``customer``, ``account``, ``insights`` and ``treatment`` from the identity rows."""
    first = rows[0]
    since: date = (first.first_order_at or first.created_at).date()
    phones = [
        {"number": r.phone_e164 or r.phone_raw, "e164": r.phone_e164, "label": r.phone_label}
        for r in rows
        if r.phone_id is not None
    ]
    customer = {
        "id": first.id,
        "external_ref": first.external_ref,
        "name": first.name,
        "customer_type": first.customer_type,
        "language": first.language,
        "marketing_consent": bool(first.marketing_consent),
        "since": since.isoformat(),
        "country": first.country,
        "email": first.email,
        "emails": [e for e in (first.email, *(first.emails or [])) if e],
        "account_manager": first.account_manager,
        "attributes": first.attributes or {},
        "phones": phones,
        "order_stats": {
            "orders": int(first.order_count or 0),
            "returns": int(first.return_count or 0),
            "first_order_at": _iso(first.first_order_at),
            "last_order_at": _iso(first.last_order_at),
        },
    }
    account = None
    if first.account_id is not None:
        balance, limit = first.balance, first.credit_limit
        account = {
            "id": first.account_id,
            "balance": _money(balance),
            "credit_limit": _money(limit),
            "available_credit": _money(limit - balance)
            if balance is not None and limit is not None
            else None,
            "currency": first.currency,
            "status": first.account_status,
            "overdue": _money(first.overdue),
            "balance_as_of": _iso(first.balance_as_of),
            "masked": False,
        }
        if first.balance_source is not None:
            # The balance as the billing system gave it (sync or import), and how fresh.
            account["source"] = {
                "name": first.balance_source,
                "as_of": _iso(first.balance_as_of),
            }
    insights = None
    if first.insight_customer_id is not None:
        insights = {
            "value_tier": first.value_tier,
            "segment": first.segment,
            "stage": first.stage,
            "clv_historic": _money(first.clv_historic),
            "clv_forecast": _money(first.clv_forecast),
            "potential": bool(first.potential),
            "churn_risk": _number(first.churn_risk),
            "satisfaction_trend": first.satisfaction_trend,
            "treatment": first.treatment,
            "details": first.details or {},
            "computed_at": _iso(first.insight_computed_at),
        }
    return {
        "customer": customer,
        "account": account,
        "insights": insights,
        "loyalty": profile_loyalty(first),
        "treatment": insights["treatment"] if insights else None,
    }


def _purchases(rows: Any) -> list[dict[str, Any]]:
    orders: dict[int, dict[str, Any]] = {}
    for row in rows:
        order = orders.get(row.id)
        if order is None:
            order = orders[row.id] = {
                "invoice_no": row.invoice_no,
                "ordered_at": _iso(row.ordered_at),
                "is_return": bool(row.is_return),
                "total": _money(row.total),
                "country": row.country,
                "currency": row.currency,
                "status": row.status,
                # Synced or imported from a system of record: which one.
                "source": {"name": row.source} if row.source is not None else None,
                "item_count": int(row.item_count or 0),
                "items": [],
            }
        if row.line_no is not None:
            order["items"].append(
                {
                    "sku": row.sku,
                    "description": row.description,
                    "quantity": row.quantity,
                    "unit_price": _number(row.unit_price),
                }
            )
    for order in orders.values():
        order["more_items"] = max(0, order["item_count"] - len(order["items"]))
    return list(orders.values())


def _next_needs(rows: Any, consent: bool) -> list[dict[str, Any]]:
    # Without marketing permission a suggestion is shown but never offered, whatever the
    # (possibly older) training run decided.
    return [
        {
            "sku": r.sku,
            "name": r.name,
            "kind": r.kind,
            "score": _number(r.score),
            "reason": r.reason,
            "may_offer": bool(r.may_offer) and consent,
        }
        for r in rows
    ]


def _interactions(rows: Any) -> list[dict[str, Any]]:
    return [
        {
            "created_at": _iso(r.created_at),
            "channel": r.channel,
            "call_id": r.call_id,
            "agent": r.agent,
            "disposition": r.disposition,
            "notes": r.notes,
            "satisfaction": r.satisfaction,
            "offer_outcomes": list(r.offer_outcomes or []),
        }
        for r in rows
    ]


async def _identity_rows(session: AsyncSession, customer_id: int) -> Any:
    rows = await repo.identity_rows(session, customer_id)
    if not rows:
        raise NotFound(f"customer {customer_id} not found")
    return rows


async def assemble_identity(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    """The fast part of a profile, in one query: ``customer``, ``account``, and (free in the
    same query) ``insights`` and ``treatment``. Raises ``NotFound`` for an unknown id."""
    doc = _identity(await _identity_rows(session, customer_id))
    doc["as_of"] = utcnow().isoformat()
    return doc


async def _four_queries(session: AsyncSession, customer_id: int) -> ProfileRows:
    identity = await _identity_rows(session, customer_id)
    return ProfileRows(
        identity,
        await repo.recent_order_lines(session, customer_id),
        await repo.next_needs(session, customer_id),
        await repo.recent_interactions(session, customer_id),
    )


async def assemble_profile(
    session: AsyncSession,
    customer_id: int,
    *,
    single_statement: bool = True,
    decline_suppress_days: int = DECLINE_SUPPRESS_DAYS,
) -> dict[str, Any]:
    """The whole profile: one statement on PostgreSQL, four indexed queries on SQLite (or with
    ``single_statement=False``; the document is the same). Raises ``NotFound`` for an
    unknown id.

    Keys: ``customer``, ``account`` (or None), ``loyalty`` (or None, app.customers.loyalty),
    ``purchases`` (last 10 orders, newest first,
    up to 20 items each), ``insights`` (or None until ``screenpop train`` ran),
    ``next_needs`` (best first, [] when none), ``interactions`` (last 10, newest first),
    ``treatment`` (or None) and ``as_of``. The touch points count at once
    (``app.customers.feedback``): declined SKUs left out of ``next_needs``,
    ``insights.satisfaction``, a recovery ``treatment`` after a grade of 1 or 2.
    """
    rows = await profile_rows(session, customer_id) if single_statement else None
    if rows is None:
        rows = await _four_queries(session, customer_id)
    elif not rows.identity:
        raise NotFound(f"customer {customer_id} not found")
    doc = _identity(rows.identity)
    doc["purchases"] = _purchases(rows.order_lines)
    doc["next_needs"] = _next_needs(rows.next_needs, doc["customer"]["marketing_consent"])
    doc["interactions"] = _interactions(rows.interactions)
    now = utcnow()
    apply_feedback(doc, now, decline_suppress_days)
    doc["as_of"] = now.isoformat()
    return doc


def mask_profile(doc: dict[str, Any], role: str, settings: Settings) -> dict[str, Any]:
    """A profile (or pop) with money fields hidden from roles that may not see them.

    For a role in ``settings.balance_roles`` the document itself is returned; otherwise a
    copy whose ``account`` has ``balance``, ``credit_limit`` and ``available_credit`` None and
    ``masked`` True. The input is never changed (it may be the pop cached on a call).
    """
    if role in settings.balance_roles or not isinstance(doc.get("account"), dict):
        return doc
    masked = copy.copy(doc)
    account = dict(doc["account"])
    for key in MASKED_ACCOUNT_FIELDS:
        if key in account:
            account[key] = None
    account["masked"] = True
    masked["account"] = account
    return masked


async def log_profile_view(
    session: AsyncSession, *, username: str, customer_id: int, call_id: str | None, reason: str
) -> None:
    """Audit one view of a customer's profile: who, which customer, when, why (which call)."""
    await repo.insert_profile_view(
        session,
        username=username[:64],
        customer_id=customer_id,
        call_id=call_id[:200] if call_id else None,
        reason=reason[:32],
        viewed_at=utcnow(),
    )


def profile_view_rows(
    *,
    usernames: Sequence[str],
    customer_id: int,
    call_id: str | None,
    reason: str,
    viewed_at: datetime,
) -> list[dict[str, Any]]:
    """One profile-view audit row per agent (written by ``insert_profile_views``, or by the
    calls domain's event write in its own statement)."""
    return [
        {
            "username": username[:64],
            "customer_id": customer_id,
            "call_id": call_id[:200] if call_id else None,
            "reason": reason[:32],
            "viewed_at": viewed_at,
        }
        for username in usernames
    ]


async def insert_profile_views(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``profile_view_rows`` in one statement."""
    await repo.insert_profile_views(session, rows)
