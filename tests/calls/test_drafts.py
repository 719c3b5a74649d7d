"""Wrap-up drafts over HTTP: saved as typed, read back on another device or by the agent a
call was transferred to, refused to others; pending wrap-ups; per-queue dispositions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls.models import Call
from app.customers.models import Interaction
from app.db import utcnow
from app.errors import Invalid
from app.queues import dispositions
from app.queues.models import Queue
from tests.customers.factories import bearer

DRAFT = {
    "disposition": "sale",
    "notes": "Wants the red lantern; call back Friday",
    "satisfaction": 4,
    "satisfaction_kind": "caller",
    "offers": [{"sku": "85123A", "outcome": "accepted"}],
}


async def _call(engine: AsyncEngine, call_id: str, **values: Any) -> None:
    now = utcnow()
    row: dict[str, Any] = {
        "id": call_id,
        "source": "generic",
        "state": "ended",
        "caller_raw": "+441144960796",
        "caller_e164": "+441144960796",
        "queue": "sales",
        "agent": "alice",
        "offered_to": [],
        "match": {},
        "first_seen_at": now - timedelta(minutes=10),
        "answered_at": now - timedelta(minutes=9),
        "ended_at": now - timedelta(minutes=5),
    }
    row.update(values)
    async with AsyncSession(engine) as session:
        await session.execute(insert(Call).values(**row))
        await session.commit()


async def test_a_draft_is_kept_with_the_call_and_read_back(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    await _call(clean_engine, "generic:d1")
    empty = await client.get("/api/calls/generic:d1/draft", headers=bearer("alice"))
    assert empty.status_code == 200
    assert empty.json()["notes"] is None and empty.json()["wrapped_up"] is False

    saved = await client.put("/api/calls/generic:d1/draft", json=DRAFT, headers=bearer("alice"))
    assert saved.status_code == 200, saved.text
    again = (await client.get("/api/calls/generic:d1/draft", headers=bearer("alice"))).json()
    assert {k: again[k] for k in DRAFT} == DRAFT
    assert again["updated_by"] == "alice"

    # Typing on: the draft is replaced, not appended to.
    await client.put("/api/calls/generic:d1/draft", json={"notes": "x"}, headers=bearer("alice"))
    latest = (await client.get("/api/calls/generic:d1/draft", headers=bearer("alice"))).json()
    assert latest["notes"] == "x" and latest["disposition"] is None


async def test_a_draft_follows_a_transfer_and_is_refused_to_others(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    await _call(clean_engine, "generic:d2", state="answered", ended_at=None)
    await client.put("/api/calls/generic:d2/draft", json=DRAFT, headers=bearer("alice"))
    async with AsyncSession(clean_engine) as session:
        # The call is transferred to bob.
        await session.execute(
            Call.__table__.update().where(Call.id == "generic:d2").values(agent="bob")
        )
        await session.commit()
    bob = await client.get("/api/calls/generic:d2/draft", headers=bearer("bob"))
    assert bob.status_code == 200 and bob.json()["notes"] == DRAFT["notes"]
    carol = await client.get("/api/calls/generic:d2/draft", headers=bearer("carol"))
    assert carol.status_code == 403
    sam = await client.get("/api/calls/generic:d2/draft", headers=bearer("sam", "supervisor"))
    assert sam.status_code == 200
    missing = await client.get("/api/calls/generic:nope/draft", headers=bearer("alice"))
    assert missing.status_code == 404


async def test_bad_drafts_are_refused_with_the_field_named(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    await _call(clean_engine, "generic:d3")
    for body, field in (
        ({"satisfaction": 6}, "satisfaction"),
        ({"satisfaction_kind": "manager"}, "satisfaction_kind"),
        ({"notes": "x" * 10_001}, "notes"),
        ({"colour": "red"}, "colour"),
    ):
        response = await client.put("/api/calls/generic:d3/draft", json=body, headers=bearer())
        assert response.status_code == 422, body
        assert field in response.text


async def test_pending_wrapups_until_done_or_expired(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    now = utcnow()
    await _call(clean_engine, "generic:p1")
    await _call(clean_engine, "generic:p2", answered_at=None)  # never answered
    await _call(clean_engine, "generic:p3", ended_at=now - timedelta(hours=13))  # expired
    await _call(clean_engine, "generic:p4", agent="bob")
    await _call(clean_engine, "generic:p5")
    await client.put("/api/calls/generic:p1/draft", json=DRAFT, headers=bearer("alice"))
    async with AsyncSession(clean_engine) as session:
        await session.execute(
            insert(Interaction).values(
                call_id="generic:p5", agent="alice", disposition="resolved", offer_outcomes=[]
            )
        )
        await session.commit()
    body = (await client.get("/api/calls/mine/pending", headers=bearer("alice"))).json()
    assert [c["call_id"] for c in body["calls"]] == ["generic:p1"]
    pending = body["calls"][0]
    assert pending["draft"]["notes"] == DRAFT["notes"]
    assert pending["caller"]["national"] == "0114 496 0796"
    assert body["expires_after_hours"] == 12
    # Once wrapped up, the draft can no longer be written.
    done = await client.put("/api/calls/generic:p5/draft", json=DRAFT, headers=bearer("alice"))
    assert done.status_code == 409


async def test_dispositions_per_queue(client: httpx.AsyncClient, clean_engine: AsyncEngine) -> None:
    async with AsyncSession(clean_engine) as session:
        session.add_all([Queue(name="sales"), Queue(name="support")])
        await session.flush()
        await dispositions.set_dispositions(
            session, "sales", dispositions.parse_dispositions("sale=Sale made,Callback booked")
        )
        await session.commit()
    body = (await client.get("/api/dispositions", headers=bearer())).json()
    assert body["queues"]["sales"] == [
        {"code": "sale", "label": "Sale made"},
        {"code": "callback_booked", "label": "Callback booked"},
    ]
    assert body["queues"]["support"] == body["default"]
    assert {"code": "resolved", "label": "Resolved"} in body["default"]
    async with AsyncSession(clean_engine) as session:
        await dispositions.check_disposition(session, "sales", "callback_booked")
        try:
            await dispositions.check_disposition(session, "sales", "resolved")
        except Invalid as exc:
            assert "sale, callback_booked" in exc.detail
        else:
            raise AssertionError("a disposition the queue does not offer was accepted")


def test_disposition_lists_are_parsed_strictly() -> None:
    assert dispositions.parse_dispositions(" Refund issued , x=Other") == [
        {"code": "refund_issued", "label": "Refund issued"},
        {"code": "x", "label": "Other"},
    ]
    for bad, says in (
        ("", "at least one"),
        ("Bad Code=Label", "lower-case"),
        ("a=A,a=B", "twice"),
        ("a=", "no label"),
    ):
        try:
            dispositions.parse_dispositions(bad)
        except Invalid as exc:
            assert says in exc.detail, (bad, exc.detail)
        else:
            raise AssertionError(f"{bad!r} was accepted")


async def test_the_wrapup_checks_the_queue_keeps_whose_grade_and_clears_the_draft(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    async with AsyncSession(clean_engine) as session:
        session.add(Queue(name="sales"))
        await session.flush()
        await dispositions.set_dispositions(
            session, "sales", dispositions.parse_dispositions("sale=Sale made")
        )
        await session.commit()
    await _call(clean_engine, "generic:w1")
    await client.put("/api/calls/generic:w1/draft", json=DRAFT, headers=bearer("alice"))
    url = "/api/calls/generic:w1/wrapup"
    wrong = await client.post(
        url, json={**DRAFT, "disposition": "resolved"}, headers=bearer("alice")
    )
    assert wrong.status_code == 422 and "'resolved' is not one of queue 'sales'" in wrong.text
    done = await client.post(url, json=DRAFT, headers=bearer("alice"))
    assert done.status_code == 201, done.text
    assert done.json()["satisfaction_kind"] == "caller"
    draft = (await client.get("/api/calls/generic:w1/draft", headers=bearer("alice"))).json()
    assert draft["wrapped_up"] is True and draft["notes"] is None
    async with AsyncSession(clean_engine) as session:
        kind, queue = (
            await session.execute(
                select(Interaction.satisfaction_kind, Interaction.queue).where(
                    Interaction.call_id == "generic:w1"
                )
            )
        ).one()
    assert (kind, queue) == ("caller", "sales")  # the call's queue, kept for the reports
