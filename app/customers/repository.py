"""Customer queries: the hot-path reads for matching and the profile, in one place.

Every query selects columns (Core rows), never entity graphs, and is keyed by an indexed
column: ``customer_phones.e164`` / ``last_digits``, ``customers.external_ref``, and the
``(customer_id, …)`` indexes on orders, order lines, interactions and next needs.
Results are SQLAlchemy rows read by column name (typed ``Any``: their column tuples are long).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, insert, literal, select, true, union
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import (
    Account,
    Customer,
    CustomerEmail,
    CustomerPhone,
    Interaction,
    LoyaltyMembership,
    MatchChoice,
    Order,
    OrderLine,
    ProfileView,
)
from app.insights.models import CustomerInsight, NextNeed
from app.raw_statements import RawStatement, fetch_rows

# A number shared by more customers than this is a switchboard: the chooser shows the best few.
MAX_CANDIDATES = 20
RECENT_ORDERS = 10
# Items shown per order (line numbers start at 1 per invoice); the rest is counted.
ITEMS_PER_ORDER = 20
RECENT_INTERACTIONS = 10
MAX_NEXT_NEEDS = 20


def _candidates(where: Any, chosen: Any) -> Any:
    """Customers matching ``where`` with what ranking needs, best-first by choice and orders."""
    last_order = (
        select(func.max(Order.ordered_at)).where(Order.customer_id == Customer.id).scalar_subquery()
    )
    last_contact = (
        select(func.max(Interaction.created_at))
        .where(Interaction.customer_id == Customer.id)
        .scalar_subquery()
    )
    last_order_at = last_order.label("last_order_at")
    chosen_before = chosen.label("chosen_before")
    return (
        select(
            Customer.id,
            Customer.name,
            Customer.external_ref,
            Customer.customer_type,
            last_order_at,
            last_contact.label("last_contact_at"),
            chosen_before,
        )
        .where(where)
        .order_by(chosen_before.desc(), last_order_at.desc().nulls_last(), Customer.id)
        .limit(MAX_CANDIDATES)
    )


# The hot-path statements are built once, here, with bind parameters: building them per call
# (functions, subqueries, labels) cost more CPU than running them, and a statement built once
# hits SQLAlchemy's compiled cache (and asyncpg's prepared-statement cache) straight away.
_CHOSEN = case(
    (
        Customer.id
        == select(MatchChoice.customer_id)
        .where(MatchChoice.e164 == bindparam("choice_e164"))
        .scalar_subquery(),
        1,
    ),
    else_=0,
)
_NOT_CHOSEN = literal(0)
_BY_E164 = _candidates(
    Customer.id.in_(
        select(CustomerPhone.customer_id).where(CustomerPhone.e164 == bindparam("e164"))
    ),
    case(
        (
            Customer.id
            == select(MatchChoice.customer_id)
            .where(MatchChoice.e164 == bindparam("e164"))
            .scalar_subquery(),
            1,
        ),
        else_=0,
    ),
)
_LAST_DIGITS_IDS = Customer.id.in_(
    select(CustomerPhone.customer_id).where(CustomerPhone.last_digits == bindparam("digits"))
)
_BY_LAST_DIGITS = _candidates(_LAST_DIGITS_IDS, _CHOSEN)
_BY_LAST_DIGITS_NO_CHOICE = _candidates(_LAST_DIGITS_IDS, _NOT_CHOSEN)
_IDS = Customer.id.in_(bindparam("ids", expanding=True))
_BY_IDS = _candidates(_IDS, _CHOSEN)
_BY_IDS_NO_CHOICE = _candidates(_IDS, _NOT_CHOSEN)
_RAW_BY_E164 = RawStatement(_BY_E164)
_RAW_BY_LAST_DIGITS = RawStatement(_BY_LAST_DIGITS)
_RAW_BY_LAST_DIGITS_NO_CHOICE = RawStatement(_BY_LAST_DIGITS_NO_CHOICE)
_ID_BY_EXTERNAL_REF = select(Customer.id).where(Customer.external_ref == bindparam("ref"))
_ID_BY_ACCOUNT_ID = select(Account.customer_id).where(Account.id == bindparam("account_id"))
_CUSTOMER_EXISTS = select(Customer.id).where(Customer.id == bindparam("customer_id"))
# The first address (ix_customers_email_prefix on PostgreSQL: lower(email) text_pattern_ops)
# or a further one (ix_customer_emails_email).
_EMAIL_OWNERS = union(
    select(Customer.id.label("id")).where(func.lower(Customer.email) == bindparam("email")),
    select(CustomerEmail.customer_id.label("id")).where(CustomerEmail.email == bindparam("email")),
).subquery()
_IDS_BY_EMAIL = select(_EMAIL_OWNERS.c.id).order_by(_EMAIL_OWNERS.c.id).limit(bindparam("limit"))


async def candidates_by_e164(session: AsyncSession, e164: str) -> Sequence[Any]:
    """Customers with a stored phone equal to ``e164`` (index ``ix_customer_phones_e164``)."""
    params = {"e164": e164}
    return await fetch_rows(session, _RAW_BY_E164, params)


async def candidates_by_last_digits(
    session: AsyncSession, digits: str, choice_e164: str | None
) -> Sequence[Any]:
    """Customers with a stored number ending in ``digits`` (``ix_customer_phones_last_digits``)."""
    if choice_e164 is None:
        return await fetch_rows(session, _RAW_BY_LAST_DIGITS_NO_CHOICE, {"digits": digits})
    params = {"digits": digits, "choice_e164": choice_e164}
    return await fetch_rows(session, _RAW_BY_LAST_DIGITS, params)


async def candidates_by_ids(
    session: AsyncSession, customer_ids: Sequence[int], choice_e164: str | None = None
) -> Sequence[Any]:
    ids = list(customer_ids)
    if choice_e164 is None:
        result = await session.execute(_BY_IDS_NO_CHOICE, {"ids": ids})
    else:
        result = await session.execute(_BY_IDS, {"ids": ids, "choice_e164": choice_e164})
    return result.all()


async def customer_id_by_external_ref(session: AsyncSession, ref: str) -> int | None:
    return (await session.execute(_ID_BY_EXTERNAL_REF, {"ref": ref})).scalar_one_or_none()


async def customer_ids_by_email(session: AsyncSession, email: str, limit: int = 20) -> list[int]:
    """Customers with the address ``email`` (lower-case), first or further, case-insensitively."""
    result = await session.execute(_IDS_BY_EMAIL, {"email": email, "limit": limit})
    return list(result.scalars().all())


async def customer_id_by_account_id(session: AsyncSession, account_id: int) -> int | None:
    result = await session.execute(_ID_BY_ACCOUNT_ID, {"account_id": account_id})
    return result.scalar_one_or_none()


async def customer_exists(session: AsyncSession, customer_id: int) -> bool:
    result = await session.execute(_CUSTOMER_EXISTS, {"customer_id": customer_id})
    return result.scalar_one_or_none() is not None


_ORDER_STATS = (
    select(
        func.count().label("order_count"),
        func.coalesce(func.sum(case((Order.is_return, 1), else_=0)), 0).label("return_count"),
        func.min(Order.ordered_at).label("first_order_at"),
        func.max(Order.ordered_at).label("last_order_at"),
    )
    .where(Order.customer_id == bindparam("customer_id"))
    .subquery()
)
_IDENTITY = (
    select(
        Customer.id,
        Customer.external_ref,
        Customer.name,
        Customer.customer_type,
        Customer.language,
        Customer.marketing_consent,
        Customer.country,
        Customer.email,
        Customer.emails,
        Customer.account_manager,
        Customer.attributes,
        Customer.created_at,
        Account.id.label("account_id"),
        Account.balance,
        Account.credit_limit,
        Account.currency,
        Account.status.label("account_status"),
        Account.overdue,
        Account.balance_as_of,
        Account.balance_source,
        CustomerInsight.customer_id.label("insight_customer_id"),
        CustomerInsight.value_tier,
        CustomerInsight.segment,
        CustomerInsight.stage,
        CustomerInsight.clv_historic,
        CustomerInsight.clv_forecast,
        CustomerInsight.potential,
        CustomerInsight.churn_risk,
        CustomerInsight.satisfaction_trend,
        CustomerInsight.treatment,
        CustomerInsight.details,
        CustomerInsight.computed_at.label("insight_computed_at"),
        LoyaltyMembership.programme.label("loyalty_programme"),
        LoyaltyMembership.tier.label("loyalty_tier"),
        LoyaltyMembership.points.label("loyalty_points"),
        LoyaltyMembership.since.label("loyalty_since"),
        LoyaltyMembership.source.label("loyalty_source"),
        LoyaltyMembership.as_of.label("loyalty_as_of"),
        LoyaltyMembership.updated_at.label("loyalty_updated_at"),
        _ORDER_STATS.c.order_count,
        _ORDER_STATS.c.return_count,
        _ORDER_STATS.c.first_order_at,
        _ORDER_STATS.c.last_order_at,
        CustomerPhone.id.label("phone_id"),
        CustomerPhone.e164.label("phone_e164"),
        CustomerPhone.raw.label("phone_raw"),
        CustomerPhone.label.label("phone_label"),
    )
    .select_from(Customer)
    .join(_ORDER_STATS, true())
    .outerjoin(Account, Account.customer_id == Customer.id)
    .outerjoin(CustomerInsight, CustomerInsight.customer_id == Customer.id)
    .outerjoin(LoyaltyMembership, LoyaltyMembership.customer_id == Customer.id)
    .outerjoin(CustomerPhone, CustomerPhone.customer_id == Customer.id)
    .where(Customer.id == bindparam("customer_id"))
    .order_by(CustomerPhone.id)
)

_RAW_IDENTITY = RawStatement(_IDENTITY)


async def identity_rows(session: AsyncSession, customer_id: int) -> Sequence[Any]:
    """One round trip: customer, account, insight and order totals, one row per phone.

    Zero rows when the customer does not exist.
    """
    params = {"customer_id": customer_id}
    return await fetch_rows(session, _RAW_IDENTITY, params)


_ITEM_COUNT = select(func.count()).where(OrderLine.order_id == Order.id).scalar_subquery()
_RECENT_ORDERS = (
    select(
        Order.id,
        Order.invoice_no,
        Order.ordered_at,
        Order.is_return,
        Order.total,
        Order.country,
        Order.currency,
        Order.status,
        Order.source,
        _ITEM_COUNT.label("item_count"),
    )
    .where(Order.customer_id == bindparam("customer_id"))
    .order_by(Order.ordered_at.desc(), Order.id.desc())
    .limit(RECENT_ORDERS)
    .subquery()
)
_RECENT_ORDER_LINES = (
    select(
        _RECENT_ORDERS,
        OrderLine.line_no,
        OrderLine.sku,
        OrderLine.description,
        OrderLine.quantity,
        OrderLine.unit_price,
    )
    .outerjoin(
        OrderLine,
        (OrderLine.order_id == _RECENT_ORDERS.c.id) & (OrderLine.line_no <= ITEMS_PER_ORDER),
    )
    .order_by(_RECENT_ORDERS.c.ordered_at.desc(), _RECENT_ORDERS.c.id.desc(), OrderLine.line_no)
)

_RAW_RECENT_ORDER_LINES = RawStatement(_RECENT_ORDER_LINES)


async def recent_order_lines(session: AsyncSession, customer_id: int) -> Sequence[Any]:
    """One round trip: the last orders with their first items, newest order first.

    One row per shown item (an order without lines still gives one row with null item
    columns); ``item_count`` is the order's full number of lines.
    """
    params = {"customer_id": customer_id}
    return await fetch_rows(session, _RAW_RECENT_ORDER_LINES, params)


_NEXT_NEEDS = (
    select(
        NextNeed.sku,
        NextNeed.name,
        NextNeed.kind,
        NextNeed.score,
        NextNeed.reason,
        NextNeed.may_offer,
    )
    .where(NextNeed.customer_id == bindparam("customer_id"))
    .order_by(NextNeed.rank)
    .limit(MAX_NEXT_NEEDS)
)

_RAW_NEXT_NEEDS = RawStatement(_NEXT_NEEDS)


async def next_needs(session: AsyncSession, customer_id: int) -> Sequence[Any]:
    params = {"customer_id": customer_id}
    return await fetch_rows(session, _RAW_NEXT_NEEDS, params)


_RECENT_INTERACTIONS = (
    select(
        Interaction.id,
        Interaction.created_at,
        Interaction.channel,
        Interaction.call_id,
        Interaction.agent,
        Interaction.disposition,
        Interaction.notes,
        Interaction.satisfaction,
        Interaction.offer_outcomes,
    )
    .where(Interaction.customer_id == bindparam("customer_id"))
    .order_by(Interaction.created_at.desc(), Interaction.id.desc())
    .limit(RECENT_INTERACTIONS)
)

_RAW_RECENT_INTERACTIONS = RawStatement(_RECENT_INTERACTIONS)


async def recent_interactions(session: AsyncSession, customer_id: int) -> Sequence[Any]:
    params = {"customer_id": customer_id}
    return await fetch_rows(session, _RAW_RECENT_INTERACTIONS, params)


_PROFILE_VIEWS = cast(Table, ProfileView.__table__).insert()


async def insert_profile_view(
    session: AsyncSession,
    *,
    username: str,
    customer_id: int,
    call_id: str | None,
    reason: str,
    viewed_at: datetime,
) -> None:
    await session.execute(
        insert(ProfileView).values(
            username=username,
            customer_id=customer_id,
            call_id=call_id,
            reason=reason,
            viewed_at=viewed_at,
        )
    )


async def insert_profile_views(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Several audit rows in one statement (one round trip: an executemany)."""
    if len(rows) == 1:
        await session.execute(_PROFILE_VIEWS, dict(rows[0]))
    elif rows:
        await session.execute(_PROFILE_VIEWS, [dict(r) for r in rows])


async def upsert_match_choice(
    session: AsyncSession, *, e164: str, customer_id: int, username: str, chosen_at: datetime
) -> None:
    """One row per number; the latest choice wins, atomically under concurrent choices."""
    values = {
        "e164": e164,
        "customer_id": customer_id,
        "chosen_by": username,
        "chosen_at": chosen_at,
    }
    stmt: Any
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(MatchChoice).values(**values)
    else:
        stmt = sqlite.insert(MatchChoice).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[MatchChoice.e164],
        set_={
            "customer_id": stmt.excluded.customer_id,
            "chosen_by": stmt.excluded.chosen_by,
            "chosen_at": stmt.excluded.chosen_at,
        },
    )
    await session.execute(stmt)


async def insert_customer(
    session: AsyncSession,
    *,
    customer: dict[str, Any],
    phone: dict[str, Any] | None,
    account: dict[str, Any],
) -> int:
    """Insert a customer with its account and optional phone; returns the new id."""
    result = await session.execute(insert(Customer).values(**customer).returning(Customer.id))
    customer_id = int(result.scalar_one())
    if phone is not None:
        await session.execute(insert(CustomerPhone).values(customer_id=customer_id, **phone))
    await session.execute(insert(Account).values(customer_id=customer_id, **account))
    return customer_id


async def contact_row(session: AsyncSession, customer_id: int) -> Any:
    """Name, type and e-mail: what a PBX's contact lookup shows."""
    query = select(Customer.name, Customer.customer_type, Customer.email).where(
        Customer.id == customer_id
    )
    return (await session.execute(query)).one_or_none()
