"""A transferred call has two legs: notes typed during the call are kept on the server and
follow the transfer, and each agent wraps up their own leg (signed events through the app)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.customers.models import Interaction
from tests.calls.conftest import ADA_PHONE, SALES_DID, World
from tests.calls.support import App, bearer, event, new_call_id, running_app

NOTES = {"disposition": "resolved", "notes": "Wants the red lantern; passing to billing"}


async def talk_then_transfer(app: App, cid: str) -> str:
    """alice answers, types notes during the call, then transfers it to bob, who answers."""
    call_id = f"generic:{cid}"
    await app.post(event(cid, "queued", caller=ADA_PHONE, dialed=SALES_DID))
    await app.post(event(cid, "offered", caller=ADA_PHONE, agent="201"))
    await app.post(event(cid, "answered", caller=ADA_PHONE, agent="201"))
    typed = await app.http.put(f"/api/calls/{call_id}/draft", json=NOTES, headers=bearer("alice"))
    assert typed.status_code == 200, typed.text  # typed during the call, kept on the server
    transfer = {"transfer_to": "202"}
    await app.post(event(cid, "transferred", caller=ADA_PHONE, attributes=transfer))
    return call_id


async def draft(app: App, call_id: str, who: str, role: str = "agent") -> Any:
    response = await app.http.get(f"/api/calls/{call_id}/draft", headers=bearer(who, role))
    return response.json() if response.status_code == 200 else response.status_code


async def test_notes_follow_a_transfer_and_each_agent_keeps_their_own(
    world: World, database_url: str
) -> None:
    async with running_app(database_url) as app:
        call_id = await talk_then_transfer(app, new_call_id())
        # bob, who has the call now, is shown alice's notes, saying whose they are.
        bobs = await draft(app, call_id, "bob")
        assert (bobs["notes"], bobs["updated_by"]) == (NOTES["notes"], "alice")
        added = {**NOTES, "notes": NOTES["notes"] + "; billing sorted it"}
        saved = await app.http.put(f"/api/calls/{call_id}/draft", json=added, headers=bearer("bob"))
        assert saved.status_code == 200
        # Each leg keeps its own: bob's typing does not overwrite what alice wrote.
        assert (await draft(app, call_id, "alice"))["notes"] == NOTES["notes"]
        assert (await draft(app, call_id, "bob"))["notes"] == added["notes"]
        assert await draft(app, call_id, "carol") == 403  # never on the call


async def test_the_transferring_agent_wraps_up_their_own_leg(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        call_id = await talk_then_transfer(app, new_call_id())
        # Her pending wrap-up opens the call although bob has it now; not for carol.
        opened = await app.http.get(f"/api/calls/{call_id}", headers=bearer("alice"))
        assert opened.status_code == 200 and opened.json()["agent"] == "bob"
        assert (
            await app.http.get(f"/api/calls/{call_id}", headers=bearer("carol"))
        ).status_code == 403
        pending = await app.http.get("/api/calls/mine/pending", headers=bearer("alice"))
        assert [c["call_id"] for c in pending.json()["calls"]] == [call_id]
        assert pending.json()["calls"][0]["draft"]["notes"] == NOTES["notes"]
        url = f"/api/calls/{call_id}/wrapup"
        mine = await app.http.post(url, json=NOTES, headers=bearer("alice"))
        assert mine.status_code == 201, mine.text
        assert (await app.http.post(url, json=NOTES, headers=bearer("alice"))).status_code == 409
        assert (await app.http.get("/api/calls/mine/pending", headers=bearer("alice"))).json()[
            "calls"
        ] == []
        # bob's leg is still his to wrap up, his draft untouched by alice's wrap-up.
        bobs = await draft(app, call_id, "bob")
        assert bobs["wrapped_up"] is False and bobs["notes"] == NOTES["notes"]
        theirs = {**NOTES, "notes": "Billing sorted it"}
        assert (await app.http.post(url, json=theirs, headers=bearer("bob"))).status_code == 201
        refused = await app.http.post(url, json=NOTES, headers=bearer("carol"))
        assert refused.status_code == 403 and "transfer" in refused.json()["detail"]
        timeline = await app.http.get(
            f"/api/customers/{world.ada}/timeline", headers=bearer("alice")
        )
    async with AsyncSession(clean_engine) as session:
        rows = (
            await session.execute(
                select(Interaction.agent, Interaction.notes)
                .where(Interaction.call_id == call_id)
                .order_by(Interaction.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("alice", NOTES["notes"]),
        ("bob", "Billing sorted it"),
    ]
    # The customer's history lists the call once, with both legs' wrap-ups.
    [listed] = [i for i in timeline.json()["items"] if i.get("id") == call_id]
    assert [w["agent"] for w in listed["wrapups"]] == ["alice", "bob"]
    assert listed["wrapup"]["agent"] == "bob"
