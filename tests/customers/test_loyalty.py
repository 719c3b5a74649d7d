"""Loyalty memberships: imported through a mapping, merged, and shown in the profile over HTTP
(SQLite and PostgreSQL); the computed frequency programme when no programme knows the customer."""

from __future__ import annotations

from datetime import UTC, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.customers.importer import ImportFileError, import_orders
from app.customers.mapped_import import import_mapped, load_mapping
from app.customers.models import CustomerRef, LoyaltyMembership
from app.customers.order_records import STORE
from app.customers.records import RecordReport
from app.insights.models import CustomerInsight
from app.insights.train import train
from tests.customers.factories import bearer
from tests.insights.data import NOW, Line, shop, write_csv

CUSTOMERS = """No,Name,Phone
K-1,Joan Smith,020 7946 0555
K-2,Olu Ade,020 7946 0666
K-3,Pat Lee,020 7946 0777
"""
CUSTOMERS_MAP = """entity = "customers"
source = "shop"
[columns]
ref = "No"
name = "Name"
phones = ["Phone"]
"""
MEMBERS = """Member,Club,Level,Balance,Joined,Checked
K-1,Tea Club,Gold,1250,2024-03-01,2026-12-01T09:00:00Z
K-9,Tea Club,Silver,10,2024-03-01,
K-2,Tea Club,Silver,12.5,2024-03-01,
K-3,,Silver,10,2024-03-01,
K-2,Tea Club,Silver,40,01/03/2024,
"""
LOYALTY_MAP = """entity = "loyalty"
source = "shop"
[columns]
customer_ref = "Member"
programme = "Club"
tier = "Level"
points = "Balance"
since = "Joined"
as_of = "Checked"
"""
COMPUTED = {
    "tier": "silver", "points": 1000, "since": "2010-11-05", "orders_12m": 2,
    "spend_12m": 1000.0, "window_end": "2011-12-09T12:51:00+00:00",
}  # fmt: skip


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def _import(
    engine: AsyncEngine, tmp_path: Path, members: str, mapping_text: str = LOYALTY_MAP
) -> RecordReport:
    mapping = load_mapping(write(tmp_path, "loyalty.toml", mapping_text))
    return await import_mapped(engine, write(tmp_path, "members.csv", members), mapping)


async def _ids(engine: AsyncEngine) -> dict[str, int]:
    async with AsyncSession(engine) as session:
        rows = await session.execute(select(CustomerRef.ref, CustomerRef.customer_id))
        return {ref: cid for ref, cid in rows.all()}


async def _profile(client: httpx.AsyncClient, customer_id: int) -> dict[str, object]:
    response = await client.get(f"/api/customers/{customer_id}/profile", headers=bearer())
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_imported_membership_is_in_the_profile_and_reimporting_changes_nothing(
    clean_engine: AsyncEngine, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    customers = load_mapping(write(tmp_path, "customers.toml", CUSTOMERS_MAP))
    await import_mapped(clean_engine, write(tmp_path, "customers.csv", CUSTOMERS), customers)
    ids = await _ids(clean_engine)

    report = await _import(clean_engine, tmp_path, MEMBERS)
    assert (report.added, report.updated, report.unchanged) == (1, 0, 0)
    assert report.bad == [
        ("line 3", "customer_ref 'K-9' is not a known shop customer"),
        ("line 4", "points '12.5' is not a whole number"),
        ("line 5", "programme is empty"),
        ("line 6", "since '01/03/2024' is not an ISO 8601 time"),
    ]
    joan = await _profile(client, ids["K-1"])
    assert joan["loyalty"] == {
        "programme": "Tea Club", "tier": "Gold", "points": 1250, "since": "2024-03-01",
        "computed": False, "source": {"name": "shop", "as_of": "2026-12-01T09:00:00+00:00"},
    }  # fmt: skip
    # Nobody else has a membership, and without `train` nothing is computed either.
    assert (await _profile(client, ids["K-2"]))["loyalty"] is None

    again = await _import(clean_engine, tmp_path, MEMBERS)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 1)
    moved = await _import(
        clean_engine,
        tmp_path,
        "Member,Club,Level,Balance,Joined,Checked\nK-1,Tea Club,Platinum,90,,\n",
    )
    assert (moved.added, moved.updated) == (0, 1)
    loyalty = (await _profile(client, ids["K-1"]))["loyalty"]
    assert isinstance(loyalty, dict)
    assert (loyalty["tier"], loyalty["points"], loyalty["since"]) == ("Platinum", 90, None)
    # Without `as_of` the membership is as fresh as when it was stored.
    assert loyalty["source"]["name"] == "shop" and loyalty["source"]["as_of"]


async def test_a_membership_beats_the_computed_programme_and_deleting_it_falls_back(
    clean_engine: AsyncEngine, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    customers = load_mapping(write(tmp_path, "customers.toml", CUSTOMERS_MAP))
    await import_mapped(clean_engine, write(tmp_path, "customers.csv", CUSTOMERS), customers)
    ids = await _ids(clean_engine)
    async with AsyncSession(clean_engine) as session:
        for ref in ("K-1", "K-2"):
            await session.execute(
                insert(CustomerInsight).values(
                    customer_id=ids[ref], value_tier="medium", segment="loyal", stage="expansion",
                    clv_historic=Decimal("1000"), clv_forecast=Decimal("200"),
                    details={"orders": 3, "loyalty": COMPUTED},
                )
            )  # fmt: skip
        await session.commit()
    await _import(clean_engine, tmp_path, MEMBERS)

    assert (await _profile(client, ids["K-1"]))["loyalty"]["programme"] == "Tea Club"  # type: ignore[index]
    olu = await _profile(client, ids["K-2"])
    assert olu["loyalty"] == {
        "programme": "frequency", "tier": "silver", "points": 1000, "since": "2010-11-05",
        "computed": True, "source": None,
        "basis": {"orders_12m": 2, "spend_12m": 1000.0,
                  "window_end": "2011-12-09T12:51:00+00:00"},
    }  # fmt: skip

    deleting = 'entity = "loyalty"\nsource = "shop"\n[columns]\ncustomer_ref = "Member"\n'
    deleting += 'programme = "Club"\ndeleted = "Deleted"\n'
    deleted = await _import(
        clean_engine,
        tmp_path,
        "Member,Club,Deleted\nK-1,Tea Club,yes\nK-2,Tea Club,yes\n",
        deleting,
    )
    assert deleted.deleted == 1  # K-2 had no membership to delete
    joan = await _profile(client, ids["K-1"])
    assert joan["loyalty"]["computed"] is True  # type: ignore[index]


async def test_a_merge_keeps_the_survivors_membership(
    clean_engine: AsyncEngine, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    customers = load_mapping(write(tmp_path, "customers.toml", CUSTOMERS_MAP))
    await import_mapped(clean_engine, write(tmp_path, "customers.csv", CUSTOMERS), customers)
    ids = await _ids(clean_engine)
    members = "Member,Club,Level,Balance,Joined,Checked\n"
    members += "K-1,Tea Club,Gold,5,,\nK-2,Coffee Club,Bronze,7,,\n"
    await _import(clean_engine, tmp_path, members)
    # K-3 has no membership: K-2's moves over; K-1 has one: it stays, K-3's goes.
    for loser, survivor, programme in (("K-2", "K-3", "Coffee Club"), ("K-3", "K-1", "Tea Club")):
        report = RecordReport()
        async with clean_engine.begin() as conn:
            await STORE["customers"](
                conn, "shop", [{"ref": loser, "merged_into": survivor}], report
            )
        assert report.merged == 1
        loyalty = (await _profile(client, ids[survivor]))["loyalty"]
        assert isinstance(loyalty, dict) and loyalty["programme"] == programme
    async with AsyncSession(clean_engine) as session:
        count = select(func.count()).select_from(LoyaltyMembership)
        assert (await session.execute(count)).scalar_one() == 1


def test_a_loyalty_mapping_needs_a_programme(tmp_path: Path) -> None:
    text = LOYALTY_MAP.replace('programme = "Club"\n', "")
    with pytest.raises(ImportFileError, match="loyalty need programme"):
        load_mapping(write(tmp_path, "bad.toml", text))


async def test_train_computes_the_frequency_programme_the_profile_shows(
    clean_engine: AsyncEngine, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # The docs' example, through the retail import and `train`: 600 and 500 in the 12 months,
    # 100 returned, a 2,000 order 13 months before: 2 orders, 1,000 spent -> silver. (At noon:
    # the retail file's times are London time, and `since` is a UTC date.)
    first = NOW - timedelta(days=395) + timedelta(hours=12)
    mine = [
        Line("77777", "700001", first, "10001", 20, 100.0),
        Line("77777", "700002", NOW - timedelta(days=300), "10001", 6, 100.0),
        Line("77777", "700003", NOW - timedelta(days=60), "10002", 3, 100.0),
        Line("77777", "700003", NOW - timedelta(days=60), "10003", 2, 100.0),
        Line("77777", "C700004", NOW - timedelta(days=30), "10001", -1, 100.0),
    ]
    await import_orders(clean_engine, write_csv(tmp_path / "shop.csv", shop() + mine))
    as_of = NOW.replace(tzinfo=UTC)
    await train(clean_engine, now=as_of)
    response = await client.get("/api/customers?external_ref=77777", headers=bearer())
    assert response.status_code == 200, response.text
    profile = await _profile(client, response.json()["customers"][0]["id"])
    assert profile["loyalty"] == {
        "programme": "frequency", "tier": "silver", "points": 1000,
        "since": first.date().isoformat(), "computed": True, "source": None,
        "basis": {"orders_12m": 2, "spend_12m": 1000.0, "window_end": as_of.isoformat()},
    }  # fmt: skip
