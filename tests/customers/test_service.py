"""Caller matching, the profile document, masking, audit, choices and quick-create."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers import quick_create, service
from app.customers.models import Account, Customer, CustomerPhone, MatchChoice, ProfileView
from app.customers.schemas import CustomerCreate
from app.errors import Invalid, NotFound
from app.insights.models import CustomerInsight, NextNeed
from app.settings import Settings
from telephony.callerid import normalise
from telephony.events import CallerId
from tests.customers.factories import (
    CustomerSpec,
    OrderSpec,
    PhoneSpec,
    add_customer,
    add_interaction,
    at,
    count,
    phone,
)

LONDON = "+442079460123"
SHARED = "+441134960555"


# --- matching -------------------------------------------------------------------------------


async def test_exact_number_in_any_format_is_a_single_match(session: AsyncSession) -> None:
    cid = await add_customer(session, CustomerSpec("Ann Lee", phones=[phone(LONDON)]))
    await add_customer(session, CustomerSpec("Bob Other", phones=[phone("+441214960001")]))
    for raw in ("020 7946 0123", "+44 (0)20-7946-0123", "sip:+442079460123@pbx.example.com"):
        match = await service.resolve_caller(session, normalise(raw))
        assert match.kind == "single", raw
        assert match.customer_id == cid
        assert match.info["matched_by"] == "e164"
        assert [c["name"] for c in match.candidates] == ["Ann Lee"]
        assert match.as_dict()["kind"] == "single"


async def test_caller_with_only_a_raw_number_is_normalised_before_matching(
    session: AsyncSession,
) -> None:
    cid = await add_customer(session, CustomerSpec("Ann Lee", phones=[phone(LONDON)]))
    caller = CallerId(raw="02079460123", e164=None, withheld=False, valid=False)
    match = await service.resolve_caller(session, caller)
    assert (match.kind, match.customer_id) == ("single", cid)


async def test_badly_stored_number_is_found_by_its_last_digits(session: AsyncSession) -> None:
    # A number typed into some CRM as "020 7946 0123" with no E.164 stored at all.
    stored = PhoneSpec(raw="020 7946 0123", e164=None, last_digits="079460123")
    cid = await add_customer(session, CustomerSpec("Old Record", phones=[stored]))
    match = await service.resolve_caller(session, normalise("+442079460123"))
    assert (match.kind, match.customer_id) == ("single", cid)
    assert match.info["matched_by"] == "last_digits"


async def test_short_numbers_are_not_matched_on_digits(session: AsyncSession) -> None:
    await add_customer(
        session,
        CustomerSpec("Ext", phones=[PhoneSpec(raw="201", e164=None, last_digits="201")]),
    )
    match = await service.resolve_caller(session, normalise("201"))
    assert match.kind == "none"
    assert match.customer_id is None


async def test_unknown_caller_gets_what_the_number_says(session: AsyncSession) -> None:
    await add_customer(session, CustomerSpec("Ann Lee", phones=[phone(LONDON)]))
    match = await service.resolve_caller(session, normalise("020 7946 0999"))
    assert match.kind == "none" and match.candidates == []
    doc = match.as_dict()
    assert doc["number"] == "+442079460999"
    assert doc["country"] == "United Kingdom"
    assert doc["region"] == "GB"
    assert doc["location"] == "London"
    assert doc["number_type"] == "fixed_line"
    foreign = await service.resolve_caller(session, normalise("+33 1 42 68 53 00"))
    assert (foreign.info["country"], foreign.info["region"]) == ("France", "FR")


async def test_withheld_caller_is_never_looked_up(session: AsyncSession) -> None:
    await add_customer(session, CustomerSpec("Ann Lee", phones=[phone(LONDON)]))
    match = await service.resolve_caller(session, normalise("anonymous"))
    assert match.kind == "withheld"
    assert match.customer_id is None
    assert match.as_dict() == {
        "kind": "withheld",
        "customer_id": None,
        "candidates": [],
        "account_ref": None,
    }


async def test_withheld_caller_is_resolved_by_an_ivr_account_ref(session: AsyncSession) -> None:
    cid = await add_customer(session, CustomerSpec("Ann Lee", external_ref="17850"))
    other = await add_customer(session, CustomerSpec("Bob Other"))
    withheld = normalise("restricted")
    by_ref = await service.resolve_caller(session, withheld, account_ref="17850")
    assert (by_ref.kind, by_ref.customer_id) == ("single", cid)
    assert by_ref.info == {"matched_by": "account_ref", "account_ref": "17850"}
    account_id = (
        await session.execute(select(Account.id).where(Account.customer_id == other))
    ).scalar_one()
    by_account = await service.resolve_caller(session, withheld, account_ref=str(account_id))
    assert (by_account.kind, by_account.customer_id) == ("single", other)
    unknown = await service.resolve_caller(session, withheld, account_ref="nope-999")
    assert unknown.kind == "withheld"
    assert unknown.info == {"account_ref": "nope-999"}


async def test_account_ref_wins_over_the_number_it_is_called_from(session: AsyncSession) -> None:
    await add_customer(session, CustomerSpec("Ann Lee", phones=[phone(LONDON)]))
    bob = await add_customer(session, CustomerSpec("Bob Other", external_ref="B-1"))
    match = await service.resolve_caller(session, normalise(LONDON), account_ref="B-1")
    assert (match.kind, match.customer_id) == ("single", bob)


async def test_shared_number_is_ranked_by_latest_activity(session: AsyncSession) -> None:
    older = await add_customer(
        session,
        CustomerSpec("Old Buyer", phones=[phone(SHARED)], orders=[OrderSpec("I1", at(2011, 1, 5))]),
    )
    recent = await add_customer(
        session,
        CustomerSpec("New Buyer", phones=[phone(SHARED)], orders=[OrderSpec("I2", at(2011, 6, 5))]),
    )
    silent = await add_customer(session, CustomerSpec("No Orders", phones=[phone(SHARED)]))
    match = await service.resolve_caller(session, normalise(SHARED))
    assert match.kind == "multiple"
    assert match.customer_id is None
    assert [c["id"] for c in match.candidates] == [recent, older, silent]
    first = match.candidates[0]
    assert set(first) == {
        "id",
        "name",
        "external_ref",
        "customer_type",
        "last_order_at",
        "last_contact_at",
        "chosen_before",
        "score",
    }
    assert first["last_order_at"].startswith("2011-06-05")
    assert [c["score"] for c in match.candidates] == sorted(
        (c["score"] for c in match.candidates), reverse=True
    )
    # A phone call with the older customer, after the newer one's order, puts them first.
    await add_interaction(session, older, at(2011, 7, 1), channel="phone", disposition="query")
    again = await service.resolve_caller(session, normalise(SHARED))
    assert [c["id"] for c in again.candidates] == [older, recent, silent]


async def test_remembered_choice_ranks_first_and_the_latest_choice_wins(
    session: AsyncSession,
) -> None:
    older = await add_customer(
        session,
        CustomerSpec("Old Buyer", phones=[phone(SHARED)], orders=[OrderSpec("I1", at(2011, 1, 5))]),
    )
    recent = await add_customer(
        session,
        CustomerSpec("New Buyer", phones=[phone(SHARED)], orders=[OrderSpec("I2", at(2011, 6, 5))]),
    )
    await service.remember_choice(session, e164=SHARED, customer_id=older, username="alice")
    match = await service.resolve_caller(session, normalise(SHARED))
    assert [c["id"] for c in match.candidates] == [older, recent]
    assert [c["chosen_before"] for c in match.candidates] == [True, False]
    assert match.candidates[0]["score"] > match.candidates[1]["score"]

    await service.remember_choice(session, e164=SHARED, customer_id=recent, username="bob")
    match = await service.resolve_caller(session, normalise(SHARED))
    assert [c["id"] for c in match.candidates] == [recent, older]
    rows = (await session.execute(select(MatchChoice.customer_id, MatchChoice.chosen_by))).all()
    assert [tuple(r) for r in rows] == [(recent, "bob")]


async def test_choosing_an_unknown_customer_is_refused(session: AsyncSession) -> None:
    with pytest.raises(NotFound):
        await service.remember_choice(session, e164=SHARED, customer_id=999_999, username="a")
    with pytest.raises(Invalid):
        await service.remember_choice(session, e164="", customer_id=1, username="a")


# --- profile --------------------------------------------------------------------------------


@contextmanager
def counting_queries(session: AsyncSession) -> Iterator[list[str]]:
    statements: list[str] = []
    conn = session.get_bind()

    def _count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(conn, "before_cursor_execute", _count)
    try:
        yield statements
    finally:
        event.remove(conn, "before_cursor_execute", _count)


def _rich_customer() -> CustomerSpec:
    orders = [
        OrderSpec(
            f"5{n:05d}",
            at(2011, 1 + n % 12, 1 + n),
            lines=[
                ("85123A", "WHITE HANGING HEART", 6, "2.55"),
                ("22423", "CAKESTAND", 1, "12.75"),
            ],
        )
        for n in range(12)
    ]
    orders.append(
        OrderSpec(
            "C580000", at(2011, 12, 20), lines=[("22423", "CAKESTAND", -1, "12.75")], is_return=True
        )
    )
    orders.append(
        OrderSpec(
            "581000",
            at(2011, 12, 21),
            lines=[(f"SKU{i}", f"Item {i}", 1, "1.25") for i in range(30)],
        )
    )
    return CustomerSpec(
        "Ann Lee",
        phones=[phone(LONDON), phone("+447700900123")],
        external_ref="17850",
        balance="120.50",
        credit_limit="1100",
        marketing_consent=False,
        created_at=at(2011, 11, 30),
        orders=orders,
    )


async def test_profile_without_insights_has_every_part_and_is_plain_json(
    session: AsyncSession,
) -> None:
    cid = await add_customer(session, _rich_customer())
    for n in range(12):
        await add_interaction(
            session,
            cid,
            at(2011, 12, 1 + n),
            channel="phone",
            agent="alice",
            disposition="order",
            notes=f"call {n}",
            satisfaction=4,
            offer_outcomes=[{"sku": "22423", "outcome": "declined"}],
        )
    with counting_queries(session) as statements:
        doc = await service.assemble_profile(session, cid)
    assert len(statements) <= 5
    json.dumps(doc)  # no Decimals, datetimes or ORM objects anywhere

    assert set(doc) >= {
        "customer",
        "account",
        "purchases",
        "insights",
        "next_needs",
        "interactions",
        "treatment",
    }
    customer = doc["customer"]
    assert customer["id"] == cid and customer["external_ref"] == "17850"
    assert customer["since"] == "2011-01-01"  # first order, not the later created_at
    assert customer["marketing_consent"] is False
    assert [p["e164"] for p in customer["phones"]] == [LONDON, "+447700900123"]
    assert customer["order_stats"]["orders"] == 14
    assert customer["order_stats"]["returns"] == 1
    assert customer["order_stats"]["last_order_at"].startswith("2011-12-21")

    assert doc["account"] == {
        "id": doc["account"]["id"],
        "balance": 120.5,
        "credit_limit": 1100.0,
        "available_credit": 979.5,
        "currency": "GBP",
        "status": "active",
        "overdue": None,
        "balance_as_of": None,
        "masked": False,
    }
    purchases = doc["purchases"]
    assert len(purchases) == 10
    assert [p["invoice_no"] for p in purchases[:2]] == ["581000", "C580000"]
    big, ret = purchases[0], purchases[1]
    assert (big["item_count"], len(big["items"]), big["more_items"]) == (30, 20, 10)
    assert ret["is_return"] is True and purchases[2]["is_return"] is False
    assert ret["items"] == [
        {"sku": "22423", "description": "CAKESTAND", "quantity": -1, "unit_price": 12.75}
    ]
    assert ret["total"] == -12.75
    dates = [p["ordered_at"] for p in purchases]
    assert dates == sorted(dates, reverse=True)

    assert doc["insights"] is None
    assert doc["treatment"] is None
    assert doc["next_needs"] == []
    interactions = doc["interactions"]
    assert len(interactions) == 10
    assert interactions[0]["notes"] == "call 11"
    assert interactions[0]["offer_outcomes"] == [{"sku": "22423", "outcome": "declined"}]
    assert interactions[0]["satisfaction"] == 4


async def test_profile_with_insights_and_next_needs(session: AsyncSession) -> None:
    spec = _rich_customer()
    cid = await add_customer(session, spec)
    consenting = await add_customer(session, CustomerSpec("Yes Please", marketing_consent=True))
    for who in (cid, consenting):
        await session.execute(
            insert(CustomerInsight).values(
                customer_id=who,
                clv_historic=3456.78,
                clv_forecast=1200,
                value_tier="high",
                potential=False,
                segment="loyal",
                stage="commitment",
                churn_risk=0.12,
                satisfaction_trend="stable",
                treatment="priority handling",
                details={"frequency": 12},
                computed_at=at(2011, 12, 22),
            )
        )
        for rank, kind in ((2, "cross_sell"), (1, "reorder")):
            await session.execute(
                insert(NextNeed).values(
                    customer_id=who,
                    rank=rank,
                    sku=f"S{rank}",
                    name=f"Product {rank}",
                    kind=kind,
                    score=1.0 / rank,
                    reason="bought 6 times, last 3 weeks ago",
                    may_offer=True,
                    computed_at=at(2011, 12, 22),
                )
            )
    doc = await service.assemble_profile(session, cid)
    json.dumps(doc)
    assert doc["insights"]["value_tier"] == "high"
    assert doc["insights"]["clv_historic"] == 3456.78
    assert doc["insights"]["details"] == {"frequency": 12}
    assert doc["treatment"] == "priority handling"
    assert [n["sku"] for n in doc["next_needs"]] == ["S1", "S2"]
    assert doc["next_needs"][0]["kind"] == "reorder"
    assert set(doc["next_needs"][0]) == {"sku", "name", "kind", "score", "reason", "may_offer"}
    # No marketing permission: shown, never offered.
    assert [n["may_offer"] for n in doc["next_needs"]] == [False, False]
    other = await service.assemble_profile(session, consenting)
    assert [n["may_offer"] for n in other["next_needs"]] == [True, True]


async def test_identity_is_one_query_and_profile_refuses_unknown_ids(
    session: AsyncSession,
) -> None:
    cid = await add_customer(session, _rich_customer())
    with counting_queries(session) as statements:
        identity = await service.assemble_identity(session, cid)
    assert len(statements) == 1
    assert identity["customer"]["name"] == "Ann Lee"
    assert identity["account"]["balance"] == 120.5
    assert "purchases" not in identity
    with pytest.raises(NotFound):
        await service.assemble_profile(session, 987_654)
    with pytest.raises(NotFound):
        await service.assemble_identity(session, 987_654)


async def test_customer_without_orders_is_a_customer_since_creation(
    session: AsyncSession,
) -> None:
    cid = await add_customer(session, CustomerSpec("New Person", created_at=at(2012, 3, 4)))
    doc = await service.assemble_profile(session, cid)
    assert doc["customer"]["since"] == "2012-03-04"
    assert doc["customer"]["order_stats"]["orders"] == 0
    assert doc["purchases"] == [] and doc["interactions"] == []


# --- masking and audit ----------------------------------------------------------------------


async def test_money_is_masked_for_roles_not_allowed_to_see_it(
    session: AsyncSession, settings: Settings
) -> None:
    cid = await add_customer(session, _rich_customer())
    doc = await service.assemble_profile(session, cid)
    strict = settings.model_copy(update={"balance_roles": ["supervisor", "admin"]})
    masked = service.mask_profile(doc, "agent", strict)
    assert masked["account"]["balance"] is None
    assert masked["account"]["credit_limit"] is None
    assert masked["account"]["available_credit"] is None
    assert masked["account"]["masked"] is True
    assert masked["account"]["currency"] == "GBP"
    assert masked["customer"] == doc["customer"]
    # The original (possibly cached on a call) is untouched.
    assert doc["account"]["balance"] == 120.5 and doc["account"]["masked"] is False
    shown = service.mask_profile(doc, "supervisor", strict)
    assert shown["account"]["balance"] == 120.5
    assert service.mask_profile({"account": None}, "agent", strict) == {"account": None}


async def test_profile_views_are_logged(session: AsyncSession) -> None:
    cid = await add_customer(session, CustomerSpec("Ann Lee"))
    await service.log_profile_view(
        session, username="alice", customer_id=cid, call_id="generic:c-1", reason="call"
    )
    await service.log_profile_view(
        session, username="sam", customer_id=cid, call_id=None, reason="lookup"
    )
    rows = (
        await session.execute(
            select(
                ProfileView.username,
                ProfileView.customer_id,
                ProfileView.call_id,
                ProfileView.reason,
                ProfileView.viewed_at,
            ).order_by(ProfileView.id)
        )
    ).all()
    assert [(r.username, r.customer_id, r.call_id, r.reason) for r in rows] == [
        ("alice", cid, "generic:c-1", "call"),
        ("sam", cid, None, "lookup"),
    ]
    assert all(r.viewed_at.tzinfo is not None for r in rows)


# --- quick-create ---------------------------------------------------------------------------


async def test_quick_create_normalises_the_phone_and_is_then_matched(
    session: AsyncSession,
) -> None:
    before = await count(session, Customer)
    cid = await quick_create.create_customer(
        session,
        CustomerCreate(
            name="Carla Diaz",
            phone="020 7946 0777",
            email="carla@example.com",
            customer_type="institutional",
            marketing_consent=True,
        ),
    )
    assert await count(session, Customer) == before + 1
    stored = (
        await session.execute(
            select(CustomerPhone.e164, CustomerPhone.last_digits).where(
                CustomerPhone.customer_id == cid
            )
        )
    ).one()
    assert tuple(stored) == ("+442079460777", "079460777")
    doc = await service.assemble_profile(session, cid)
    assert doc["customer"]["country"] == "United Kingdom"
    assert doc["customer"]["customer_type"] == "institutional"
    assert doc["account"]["balance"] == 0.0 and doc["account"]["currency"] == "GBP"
    match = await service.resolve_caller(session, normalise("+442079460777"))
    assert (match.kind, match.customer_id) == ("single", cid)


@pytest.mark.parametrize("bad_phone", ["12", "anonymous", "not a number"])
async def test_quick_create_refuses_a_phone_that_is_not_a_number(
    session: AsyncSession, bad_phone: str
) -> None:
    before = await count(session, Customer)
    with pytest.raises(Invalid, match="phone"):
        await quick_create.create_customer(session, CustomerCreate(name="X Y", phone=bad_phone))
    assert await count(session, Customer) == before
