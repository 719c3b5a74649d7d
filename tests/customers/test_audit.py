"""The profile-view audit: a call as the reason only for who is or was on it; the admin's log."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import subprocess
import sys

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls.models import Call, PopDelivery
from app.customers.models import ProfileView
from tests.conftest import add_user
from tests.customers.factories import CustomerSpec, add_customer, bearer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def _seed(engine: AsyncEngine) -> int:
    await add_user(engine, "sue", "supervisor", queues=["sales"])
    await add_user(engine, "ops", "supervisor")  # no queues: supervises every queue
    async with AsyncSession(engine) as session:
        customer_id = await add_customer(session, CustomerSpec("Ann Lee"))
        session.add_all(
            [
                Call(id="generic:bobs", source="generic", state="answered", agent="bob",
                     queue="sales"),
                Call(id="generic:ring", source="generic", state="ringing", offered_to=["cat"],
                     queue="support"),
                PopDelivery(call_id="generic:ring", username="dan", version=1),
            ]
        )  # fmt: skip
        await session.commit()
    return customer_id


async def _count(engine: AsyncEngine) -> int:
    async with AsyncSession(engine) as session:
        return int(await session.scalar(select(func.count()).select_from(ProfileView)) or 0)


async def _view(client: httpx.AsyncClient, cid: int, call_id: str, who: str, role: str) -> int:
    response = await client.get(
        f"/api/customers/{cid}/profile", params={"call_id": call_id}, headers=bearer(who, role)
    )
    return response.status_code


async def test_a_call_is_a_reason_only_for_who_is_was_on_it_or_supervises_it(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    cid = await _seed(clean_engine)
    allowed = [
        ("generic:bobs", "bob", "agent"),  # the call's agent
        ("generic:ring", "cat", "agent"),  # offered to
        ("generic:ring", "dan", "agent"),  # popped to
        ("generic:bobs", "sue", "supervisor"),  # supervises its queue
        ("generic:ring", "ops", "supervisor"),  # supervises every queue
        ("generic:ring", "root", "admin"),
    ]
    for call_id, who, role in allowed:
        assert await _view(client, cid, call_id, who, role) == 200, (call_id, who)
        # Committed before the answer: another connection sees it at once.
    assert await _count(clean_engine) == len(allowed)

    refused = [
        ("generic:bobs", "cat", "agent", 403),  # another agent's call
        ("generic:ring", "sue", "supervisor", 403),  # a queue she does not supervise
        ("generic:made-up", "bob", "agent", 404),
    ]
    for call_id, who, role, status in refused:
        assert await _view(client, cid, call_id, who, role) == status, (call_id, who)
    assert await _count(clean_engine) == len(allowed), "a refused view is not logged"


async def test_admins_read_the_audit_log_by_customer_user_and_day(
    client: httpx.AsyncClient, clean_engine: AsyncEngine, database_url: str
) -> None:
    cid = await _seed(clean_engine)
    other = await _other_customer(clean_engine)
    assert await _view(client, cid, "generic:bobs", "bob", "agent") == 200
    response = await client.get(f"/api/customers/{other}/profile", headers=bearer("cat"))
    assert response.status_code == 200
    admin = bearer("root", "admin")
    today = dt.datetime.now(dt.UTC).date()

    everything = (await client.get("/api/audit", headers=admin)).json()["views"]
    assert [(v["username"], v["customer_id"], v["call_id"], v["reason"]) for v in everything] == [
        ("cat", other, None, "lookup"),
        ("bob", cid, "generic:bobs", "call"),
    ]
    by_customer = await client.get("/api/audit", params={"customer_id": cid}, headers=admin)
    assert [v["username"] for v in by_customer.json()["views"]] == ["bob"]
    by_user = await client.get("/api/audit", params={"username": "cat"}, headers=admin)
    assert [v["customer_id"] for v in by_user.json()["views"]] == [other]
    for day, expected in ((today, 2), (today - dt.timedelta(days=1), 0)):
        on_day = await client.get("/api/audit", params={"date": str(day)}, headers=admin)
        assert len(on_day.json()["views"]) == expected
    as_csv = await client.get("/api/audit", params={"format": "csv"}, headers=admin)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert [r["username"] for r in csv.DictReader(io.StringIO(as_csv.text))] == ["cat", "bob"]

    refused = await client.get("/api/audit", headers=bearer("sue", "supervisor"))
    assert refused.status_code == 403
    bad_day = await client.get("/api/audit", params={"date": "yesterday"}, headers=admin)
    assert bad_day.status_code == 422

    command = [sys.executable, "-m", "app.cli", "audit", "--user", "bob", "--day", str(today)]
    env = {**os.environ, "SCREENPOP_DATABASE_URL": database_url}
    out = await asyncio.to_thread(
        subprocess.run,
        [*command, "--csv"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [(r["username"], r["customer_id"], r["call_id"]) for r in rows] == [
        ("bob", str(cid), "generic:bobs")
    ]


async def _other_customer(engine: AsyncEngine) -> int:
    async with AsyncSession(engine) as session:
        customer_id = await add_customer(session, CustomerSpec("Hughes Trading"))
        await session.commit()
    return customer_id
