"""The agent desk's customer reads over HTTP: search by anything a caller can tell, the
audited open from a search, and the paged timeline (calls, touch points, orders)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls.models import Call
from app.customers.models import CustomerEmail, ProfileView
from tests.customers.factories import (
    CustomerSpec,
    OrderSpec,
    add_customer,
    add_interaction,
    at,
    bearer,
    phone,
)


async def _seed(engine: AsyncEngine) -> dict[str, int]:
    async with AsyncSession(engine) as session:
        ids = {
            "jane": await add_customer(
                session,
                CustomerSpec(
                    "Jane Smith",
                    phones=[phone("+441144960796")],
                    external_ref="C-1001",
                    orders=[
                        OrderSpec("900001", at(2026, 3, 1)),
                        OrderSpec("900002", at(2026, 5, 1)),
                    ],
                ),
            ),
            "john": await add_customer(session, CustomerSpec("John Smithers")),
            "ana": await add_customer(session, CustomerSpec("Ana 100% Perez")),
        }
        await session.commit()
    return ids


async def _search(client: httpx.AsyncClient, q: str) -> list[str]:
    response = await client.get("/api/customers/search", params={"q": q}, headers=bearer())
    assert response.status_code == 200, response.text
    return [c["name"] for c in response.json()["customers"]]


async def test_search_by_name_part_phone_email_and_reference(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    ids = await _seed(clean_engine)
    assert await _search(client, "smith") == ["Jane Smith", "John Smithers"]
    assert await _search(client, "smith jane") == ["Jane Smith"]
    assert await _search(client, "SMITHERS") == ["John Smithers"]
    # A phone number in any format a caller might say it.
    for spoken in ("0114 496 0796", "+44 (0)114 4960796", "00441144960796", "+441144960796"):
        assert await _search(client, spoken) == ["Jane Smith"], spoken
    assert await _search(client, "jane@example") == ["Jane Smith"]
    assert await _search(client, "Jane@Example") == ["Jane Smith"]
    # Any of a customer's addresses, not only the first.
    async with AsyncSession(clean_engine) as session:
        await session.execute(
            insert(CustomerEmail).values(customer_id=ids["john"], email="orders@smithers.example")
        )
        await session.commit()
    assert await _search(client, "Orders@Smithers") == ["John Smithers"]
    assert await _search(client, "orders@nowhere") == []
    assert await _search(client, "c-1001") == ["Jane Smith"]
    # LIKE wildcards in the query are literal characters.
    assert await _search(client, "100%") == ["Ana 100% Perez"]
    assert await _search(client, "nobody") == []


async def test_search_results_carry_national_and_e164_numbers(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    ids = await _seed(clean_engine)
    body = (
        await client.get("/api/customers/search", params={"q": "Jane"}, headers=bearer())
    ).json()
    (jane,) = body["customers"]
    assert jane["id"] == ids["jane"] and jane["matched_by"] == "name"
    assert jane["phones"] == [
        {"e164": "+441144960796", "national": "0114 496 0796", "label": "main"}
    ]
    by_number = await client.get(
        "/api/customers/search", params={"q": f"#{ids['john']}"}, headers=bearer()
    )
    assert [c["name"] for c in by_number.json()["customers"]] == ["John Smithers"]


async def test_search_refuses_bad_queries_clearly(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    assert (await client.get("/api/customers/search", params={"q": "jane"})).status_code == 401
    short = await client.get("/api/customers/search", params={"q": " j "}, headers=bearer())
    assert short.status_code == 422 and "2 characters" in short.json()["detail"]
    missing = await client.get("/api/customers/search", headers=bearer())
    assert missing.status_code == 422
    long = await client.get("/api/customers/search", params={"q": "x" * 201}, headers=bearer())
    assert long.status_code == 422


async def test_a_profile_opened_from_search_is_audited_as_search(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    ids = await _seed(clean_engine)
    response = await client.get(
        f"/api/customers/{ids['jane']}/profile", params={"reason": "search"}, headers=bearer("bob")
    )
    assert response.status_code == 200
    bad = await client.get(
        f"/api/customers/{ids['jane']}/profile", params={"reason": "curious"}, headers=bearer()
    )
    assert bad.status_code == 422
    async with AsyncSession(clean_engine) as session:
        views = (await session.execute(select(ProfileView.username, ProfileView.reason))).all()
    assert [tuple(v) for v in views] == [("bob", "search")]


async def test_timeline_merges_calls_touches_and_orders_newest_first_in_pages(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    ids = await _seed(clean_engine)
    jane = ids["jane"]
    async with AsyncSession(clean_engine) as session:
        start = at(2026, 6, 1)
        await session.execute(
            insert(Call).values(
                id="generic:t1",
                source="generic",
                state="ended",
                caller_raw="+441144960796",
                caller_e164="+441144960796",
                queue="sales",
                agent="alice",
                customer_id=jane,
                match={},
                offered_to=[],
                first_seen_at=start,
                answered_at=start + timedelta(seconds=5),
                ended_at=start + timedelta(minutes=3),
            )
        )
        await add_interaction(
            session,
            jane,
            start + timedelta(minutes=4),
            call_id="generic:t1",
            agent="alice",
            disposition="sale",
            notes="Bought lanterns",
            satisfaction=5,
            satisfaction_kind="caller",
            offer_outcomes=[],
        )
        await add_interaction(
            session,
            jane,
            at(2026, 4, 1),
            channel="email",
            notes="Asked for an invoice",
            offer_outcomes=[],
        )
        await session.commit()

    first = (
        await client.get(f"/api/customers/{jane}/timeline", params={"limit": 2}, headers=bearer())
    ).json()
    assert [i["kind"] for i in first["items"]] == ["call", "order"]
    call = first["items"][0]
    assert call["id"] == "generic:t1" and call["caller"]["national"] == "0114 496 0796"
    assert call["wrapup"]["notes"] == "Bought lanterns"
    assert call["wrapup"]["satisfaction_kind"] == "caller"
    assert first["items"][1]["invoice_no"] == "900002" and first["items"][1]["item_count"] == 1
    assert first["next"]

    second = (
        await client.get(
            f"/api/customers/{jane}/timeline",
            params={"limit": 2, "before": first["next"]},
            headers=bearer(),
        )
    ).json()
    # The call's wrap-up is not listed again as a separate touch point.
    assert [(i["kind"], i.get("channel") or i.get("invoice_no")) for i in second["items"]] == [
        ("touch", "email"),
        ("order", "900001"),
    ]
    assert second["next"] is None


async def test_timeline_refuses_unknown_customers_and_bad_cursors(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    ids = await _seed(clean_engine)
    missing = await client.get("/api/customers/999999/timeline", headers=bearer())
    assert missing.status_code == 404
    bad = await client.get(
        f"/api/customers/{ids['jane']}/timeline", params={"before": "yesterday"}, headers=bearer()
    )
    assert bad.status_code == 422 and "cursor" in bad.json()["detail"]
