"""The customers API and the PBX lookup, over HTTP (ASGI) on a real database."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls.models import Call
from app.customers.models import Customer, ProfileView
from tests.customers.factories import (
    CustomerSpec,
    OrderSpec,
    add_customer,
    app_client,
    at,
    bearer,
    count,
    phone,
)

LONDON = "+442079460123"
SHARED = "+441134960555"
LOOKUP_KEY = "lookup-key-for-tests-0123456789"


async def _seed(engine: AsyncEngine) -> dict[str, int]:
    async with AsyncSession(engine) as session:
        ids = {
            "ann": await add_customer(
                session,
                CustomerSpec(
                    "Ann Lee",
                    phones=[phone(LONDON)],
                    external_ref="17850",
                    balance="120.50",
                    orders=[OrderSpec("536365", at(2011, 12, 1))],
                ),
            ),
            "firm": await add_customer(
                session,
                CustomerSpec(
                    "Hughes Trading",
                    phones=[phone("+441214960001")],
                    customer_type="industrial",
                ),
            ),
            "old": await add_customer(
                session,
                CustomerSpec(
                    "Old Sharer", phones=[phone(SHARED)], orders=[OrderSpec("1", at(2010, 1, 1))]
                ),
            ),
            "new": await add_customer(
                session,
                CustomerSpec(
                    "New Sharer", phones=[phone(SHARED)], orders=[OrderSpec("2", at(2011, 1, 1))]
                ),
            ),
        }
        await session.commit()
    return ids


async def _views(engine: AsyncEngine) -> list[tuple[str, int, str | None, str]]:
    async with AsyncSession(engine) as session:
        rows = await session.execute(
            select(
                ProfileView.username,
                ProfileView.customer_id,
                ProfileView.call_id,
                ProfileView.reason,
            ).order_by(ProfileView.id)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


# --- search ---------------------------------------------------------------------------------


async def test_search_by_phone_uses_the_matching_rules(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    ids = await _seed(clean_engine)
    response = await client.get(
        "/api/customers", params={"phone": "020 7946 0123"}, headers=bearer()
    )
    assert response.status_code == 200
    body = response.json()
    assert [c["id"] for c in body["customers"]] == [ids["ann"]]
    assert body["customers"][0]["name"] == "Ann Lee"
    assert body["match"]["kind"] == "single"

    shared = await client.get("/api/customers", params={"phone": SHARED}, headers=bearer())
    assert [c["id"] for c in shared.json()["customers"]] == [ids["new"], ids["old"]]
    assert shared.json()["match"]["kind"] == "multiple"

    nobody = await client.get("/api/customers", params={"phone": "+442079460999"}, headers=bearer())
    assert nobody.json()["customers"] == []
    assert nobody.json()["match"]["country"] == "United Kingdom"


async def test_search_by_external_ref(client: httpx.AsyncClient, clean_engine: AsyncEngine) -> None:
    ids = await _seed(clean_engine)
    found = await client.get("/api/customers", params={"external_ref": "17850"}, headers=bearer())
    assert [c["id"] for c in found.json()["customers"]] == [ids["ann"]]
    missing = await client.get("/api/customers", params={"external_ref": "0"}, headers=bearer())
    assert missing.status_code == 200 and missing.json()["customers"] == []


async def test_search_needs_a_token_and_exactly_one_criterion(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    await _seed(clean_engine)
    assert (await client.get("/api/customers", params={"phone": LONDON})).status_code == 401
    neither = await client.get("/api/customers", headers=bearer())
    assert neither.status_code == 422 and "phone" in neither.json()["detail"]
    both = await client.get(
        "/api/customers", params={"phone": LONDON, "external_ref": "1"}, headers=bearer()
    )
    assert both.status_code == 422
    # Whatever can never match a customer is refused alike, naming the field: a withheld
    # caller, letters, too few digits for the last-digits fallback.
    for junk in ("anonymous", "abc", "12345"):
        refused = await client.get("/api/customers", params={"phone": junk}, headers=bearer())
        assert refused.status_code == 422, junk
        assert refused.json()["detail"].startswith("phone: "), refused.json()
    # A badly written number with enough digits still reaches the last-digits fallback.
    loose = await client.get("/api/customers", params={"phone": "7946-0123-99"}, headers=bearer())
    assert loose.status_code == 200


# --- profile --------------------------------------------------------------------------------


async def test_profile_is_served_and_every_view_logged(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    ids = await _seed(clean_engine)
    response = await client.get(f"/api/customers/{ids['ann']}/profile", headers=bearer("alice"))
    assert response.status_code == 200
    doc = response.json()
    assert doc["customer"]["name"] == "Ann Lee"
    assert doc["account"]["balance"] == 120.5
    assert [p["invoice_no"] for p in doc["purchases"]] == ["536365"]
    assert doc["insights"] is None and doc["next_needs"] == []

    async with AsyncSession(clean_engine) as session:
        session.add(Call(id="generic:abc", source="generic", state="answered", agent="bob"))
        await session.commit()
    during_call = await client.get(
        f"/api/customers/{ids['ann']}/profile",
        params={"call_id": "generic:abc"},
        headers=bearer("bob"),
    )
    assert during_call.status_code == 200
    assert await _views(clean_engine) == [
        ("alice", ids["ann"], None, "lookup"),
        ("bob", ids["ann"], "generic:abc", "call"),
    ]


async def test_profile_of_unknown_customer_is_404_and_not_logged(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    await _seed(clean_engine)
    response = await client.get("/api/customers/999999/profile", headers=bearer())
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert await _views(clean_engine) == []
    assert (await client.get("/api/customers/1/profile")).status_code == 401


async def test_profile_money_is_masked_by_role(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    ids = await _seed(clean_engine)
    async with app_client(database_url, balance_roles=["supervisor", "admin"]) as http:
        agent = await http.get(f"/api/customers/{ids['ann']}/profile", headers=bearer("alice"))
        boss = await http.get(
            f"/api/customers/{ids['ann']}/profile", headers=bearer("sam", "supervisor")
        )
    assert agent.json()["account"]["balance"] is None
    assert agent.json()["account"]["credit_limit"] is None
    assert agent.json()["account"]["masked"] is True
    assert boss.json()["account"]["balance"] == 120.5
    assert boss.json()["account"]["masked"] is False


# --- quick-create ---------------------------------------------------------------------------


async def test_quick_create_then_find_by_phone(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    response = await client.post(
        "/api/customers",
        json={
            "name": "Carla Diaz",
            "phone": "020 7946 0777",
            "customer_type": "government",
            "email": "carla@example.com",
            "marketing_consent": True,
        },
        headers=bearer(),
    )
    assert response.status_code == 201
    created = response.json()
    assert created["phone"] == "+442079460777" and created["name"] == "Carla Diaz"
    found = await client.get("/api/customers", params={"phone": "+442079460777"}, headers=bearer())
    assert [c["id"] for c in found.json()["customers"]] == [created["id"]]
    assert found.json()["customers"][0]["customer_type"] == "government"


async def test_quick_create_with_a_customers_number_is_409_naming_them(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    """The next call from a number given to a second customer would be ``multiple``: the
    agent is told whose number it is (to link the call to them instead), unless they say the
    number is shared."""
    ids = await _seed(clean_engine)
    body = {"name": "Someone Else", "phone": "020 7946 0123"}
    taken = await client.post("/api/customers", json=body, headers=bearer())
    assert taken.status_code == 409
    answer = taken.json()
    assert answer["error"] == "conflict" and answer["detail"].startswith("phone: +442079460123")
    assert answer["customers"] == [{"id": ids["ann"], "name": "Ann Lee", "external_ref": "17850"}]
    shared = await client.post(
        "/api/customers", json={"name": "Third Sharer", "phone": SHARED}, headers=bearer()
    )
    assert shared.status_code == 409
    assert [c["id"] for c in shared.json()["customers"]] == [ids["new"], ids["old"]]
    async with AsyncSession(clean_engine) as session:
        assert await count(session, Customer) == 4
    anyway = await client.post(
        "/api/customers", json={**body, "shared_phone": True}, headers=bearer()
    )
    assert anyway.status_code == 201, anyway.text
    found = await client.get("/api/customers", params={"phone": LONDON}, headers=bearer())
    assert found.json()["match"]["kind"] == "multiple"


async def test_quick_create_refuses_bad_data_with_422_naming_the_field(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    cases = {
        "phone": {"name": "X Y", "phone": "12"},
        "email": {"name": "X Y", "email": "not-an-address"},
        "name": {"phone": "+442079460777"},
        "customer_type": {"name": "X Y", "customer_type": "alien"},
    }
    for field, body in cases.items():
        response = await client.post("/api/customers", json=body, headers=bearer())
        assert response.status_code == 422, field
        assert field in response.json()["detail"], (field, response.json())
    assert (await client.post("/api/customers", json={"name": "X"})).status_code == 401
    async with AsyncSession(clean_engine) as session:
        assert await count(session, Customer) == 0


# --- PBX lookup -----------------------------------------------------------------------------


async def test_lookup_answers_the_3cx_fields(clean_engine: AsyncEngine, database_url: str) -> None:
    ids = await _seed(clean_engine)
    async with app_client(
        database_url, lookup_api_key=LOOKUP_KEY, public_url="https://pop.example.com/"
    ) as http:
        person = await http.get(
            "/telephony/lookup",
            params={"number": "02079460123", "format": "json"},
            headers={"X-API-Key": LOOKUP_KEY},
        )
        firm = await http.get(
            "/telephony/lookup", params={"number": "+441214960001", "key": LOOKUP_KEY}
        )
        shared = await http.get("/telephony/lookup", params={"number": SHARED, "key": LOOKUP_KEY})
    assert person.status_code == 200
    # Routing hints ride along (tests/customers/test_routing.py); the 3CX fields are unchanged.
    assert person.json().pop("routing")["priority"] == 0
    assert {k: v for k, v in person.json().items() if k != "routing"} == {
        "customer_id": str(ids["ann"]),
        "external_ref": "17850",
        "name": "Ann Lee",
        "first_name": "Ann",
        "last_name": "Lee",
        "company": "",
        "email": "ann@example.com",
        "phone": LONDON,
        "contact_url": f"https://pop.example.com/agent?customer={ids['ann']}",
        "matches": 1,
    }
    assert firm.json()["company"] == "Hughes Trading"
    assert firm.json()["customer_id"] == str(ids["firm"])
    # A shared number answers with the best-ranked customer and says how many matched.
    assert shared.json()["customer_id"] == str(ids["new"])
    assert shared.json()["matches"] == 2


async def test_lookup_text_format_is_the_bare_name(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    await _seed(clean_engine)
    async with app_client(database_url, lookup_api_key=LOOKUP_KEY) as http:
        known = await http.get(
            "/telephony/lookup",
            params={"number": "442079460123", "format": "text", "key": LOOKUP_KEY},
        )
        unknown = await http.get(
            "/telephony/lookup",
            params={"number": "+442079460999", "format": "text", "key": LOOKUP_KEY},
        )
    assert known.status_code == 200
    assert known.headers["content-type"].startswith("text/plain")
    assert known.text == "Ann Lee"
    assert unknown.status_code == 404 and unknown.text == ""


async def test_lookup_unknown_and_withheld_numbers_are_404(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    await _seed(clean_engine)
    async with app_client(database_url, lookup_api_key=LOOKUP_KEY) as http:
        # A PBX asks about whatever caller id it got: anything that is no customer's is a
        # plain 404 (Superfecta and 3CX read it as "unknown caller"), never a 422.
        for number in ("+442079460999", "anonymous", "abc", "12345"):
            response = await http.get(
                "/telephony/lookup", params={"number": number}, headers={"X-API-Key": LOOKUP_KEY}
            )
            assert response.status_code == 404, number
            assert response.json()["error"] == "not_found"
            assert "customer_id" not in response.json()
        bad_format = await http.get(
            "/telephony/lookup",
            params={"number": LONDON, "format": "xml"},
            headers={"X-API-Key": LOOKUP_KEY},
        )
        assert bad_format.status_code == 422
        no_number = await http.get("/telephony/lookup", headers={"X-API-Key": LOOKUP_KEY})
        assert no_number.status_code == 422 and "number" in no_number.json()["detail"]


async def test_lookup_refuses_missing_or_wrong_keys(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    await _seed(clean_engine)
    async with app_client(database_url, lookup_api_key=LOOKUP_KEY) as http:
        missing = await http.get("/telephony/lookup", params={"number": LONDON})
        wrong_header = await http.get(
            "/telephony/lookup", params={"number": LONDON}, headers={"X-API-Key": "nope"}
        )
        wrong_param = await http.get(
            "/telephony/lookup", params={"number": LONDON, "key": "nope", "format": "text"}
        )
    assert missing.status_code == 401 and "missing" in missing.json()["detail"]
    assert wrong_header.status_code == 401 and "wrong" in wrong_header.json()["detail"]
    assert wrong_param.status_code == 401
    assert "Ann" not in wrong_param.text


async def test_lookup_without_a_configured_key_is_closed_unless_dev(
    client: httpx.AsyncClient, clean_engine: AsyncEngine, database_url: str
) -> None:
    await _seed(clean_engine)
    closed = await client.get("/telephony/lookup", params={"number": LONDON, "key": "anything"})
    assert closed.status_code == 401
    assert "SCREENPOP_LOOKUP_API_KEY" in closed.json()["detail"]
    async with app_client(database_url, dev=True) as http:
        open_in_dev = await http.get("/telephony/lookup", params={"number": LONDON})
    assert open_in_dev.status_code == 200
    assert open_in_dev.json()["name"] == "Ann Lee"
