"""Ingest through the app (ASGI) on both backends: pops, receipts, journal-first, replay."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls import planning as calls_planning
from app.calls.models import Call, CallEventRecord, PopDelivery
from app.calls.replay import replay_journal, replay_unapplied
from app.customers.models import MatchChoice, ProfileView
from app.db import create_sessionmaker
from tests.calls.conftest import (
    ADA_PHONE,
    ANSWER_DID,
    OFF_DID,
    SALES_DID,
    SHARED_PHONE,
    UNKNOWN_PHONE,
    World,
)
from tests.calls.support import App, bearer, event, new_call_id, running_app


def frames(sub: Any) -> list[dict[str, Any]]:
    out = []
    while (frame := sub.get_nowait()) is not None:
        out.append(orjson.loads(frame))
    return out


async def call_row(engine: AsyncEngine, call_id: str) -> dict[str, Any]:
    async with AsyncSession(engine) as session:
        row = (await session.execute(select(Call.__table__).where(Call.id == call_id))).mappings()
        return dict(row.one())


STATE_COLUMNS = ("state", "agent", "offered_to", "queued_at", "answered_at", "ended_at", "queue",
                 "caller_raw", "caller_e164", "customer_id")  # fmt: skip


async def test_offer_pushes_the_prebuilt_pop_and_records_delivery_and_view(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        alice = app.state["hub"].subscribe(["agent:alice"])
        bob = app.state["hub"].subscribe(["agent:bob"])
        changes = app.state["hub"].subscribe(["calls"])
        cid = new_call_id()
        await app.post(event(cid, "queued", caller=ADA_PHONE, dialed=SALES_DID))
        await app.calls.drain()
        queued = await call_row(clean_engine, f"generic:{cid}")
        assert queued["pop"]["complete"] is True  # built at first sight, before any offer
        assert frames(alice) == []
        await app.post(event(cid, "offered", caller=ADA_PHONE, agent="201"))
        [pop] = frames(alice)
        assert frames(bob) == []
        assert pop["type"] == "pop" and pop["version"] == queued["pop_version"]
        assert pop["call"] == pop["call"] | {"id": f"generic:{cid}", "state": "ringing",
                                             "queue": "sales"}  # fmt: skip
        assert pop["call"]["caller"] == {
            "raw": ADA_PHONE,
            "e164": ADA_PHONE,
            "national": "07700 900101",  # as the caller says it
            "withheld": False,
        }
        assert pop["match"]["kind"] == "single" and pop["customer"]["id"] == world.ada
        assert pop["customer"]["name"] == "Ada Lovelace"
        assert pop["account"]["balance"] == 42.5
        assert [p["invoice_no"] for p in pop["purchases"]] == ["INV-2", "INV-1"]
        messages = frames(changes)
        # pop.pushed (pop health) comes from a websocket once it has written the pop: there is
        # none here (tests/calls/test_pop_health.py).
        assert [m["type"] for m in messages] == ["call.change", "call.change"]
    async with AsyncSession(clean_engine) as session:
        delivery = (await session.execute(select(PopDelivery))).scalar_one()
        assert delivery.username == "alice" and delivery.version == queued["pop_version"]
        assert delivery.latency_ms is None  # written to no socket
        view = (await session.execute(select(ProfileView))).scalar_one()
        assert (view.username, view.customer_id, view.reason) == ("alice", world.ada, "pop")
        assert view.call_id == f"generic:{cid}"


async def test_profile_over_budget_goes_out_as_identity_then_pop_update(
    world: World, database_url: str
) -> None:
    async with running_app(database_url, pop_budget_ms=0) as app:
        alice = app.state["hub"].subscribe(["agent:alice"])
        cid = new_call_id()
        await app.post(event(cid, "offered", caller=ADA_PHONE, agent="alice", dialed=SALES_DID))
        await app.calls.drain()
        pop, update_ = frames(alice)
    assert pop["type"] == "pop" and pop["complete"] is False
    assert pop["customer"]["name"] == "Ada Lovelace" and pop["account"]["balance"] == 42.5
    assert pop["purchases"] == []
    assert update_["type"] == "pop.update" and update_["version"] == pop["version"] + 1
    assert update_["complete"] is True and len(update_["purchases"]) == 2


async def test_ring_all_then_answer_withdraws_from_the_others(
    world: World, database_url: str
) -> None:
    async with running_app(database_url) as app:
        hub = app.state["hub"]
        subs = {u: hub.subscribe([f"agent:{u}"]) for u in ("alice", "bob", "carol")}
        cid = new_call_id()
        await app.post(event(cid, "queued", caller=ADA_PHONE, dialed=SALES_DID))
        for ext in ("201", "202", "203"):
            await app.post(event(cid, "offered", caller=ADA_PHONE, agent=ext))
        got = {u: frames(s) for u, s in subs.items()}
        assert all([m["type"] for m in got[u]] == ["pop"] for u in got)
        assert len({m[0]["version"] for m in got.values()}) == 1  # same version everywhere
        await app.post(event(cid, "answered", agent="bob"))
        for user in ("alice", "carol"):
            [note] = frames(subs[user])
            assert note == {"type": "call.state", "call_id": f"generic:{cid}",
                            "state": "answered", "withdrawn": True,
                            "reason": "answered_elsewhere"}  # fmt: skip
        [mine] = frames(subs["bob"])
        assert mine["type"] == "call.state" and mine["withdrawn"] is False
        assert mine["state"] == "answered"


async def test_transfer_pops_the_new_agent_with_the_same_caller(
    world: World, database_url: str
) -> None:
    async with running_app(database_url) as app:
        hub = app.state["hub"]
        alice, bob = hub.subscribe(["agent:alice"]), hub.subscribe(["agent:bob"])
        cid = new_call_id()
        await app.post(event(cid, "offered", caller=ADA_PHONE, agent="alice", dialed=SALES_DID))
        await app.post(event(cid, "answered", agent="alice"))
        frames(alice)
        await app.post(
            event(cid, "transferred", caller="", agent="alice", attributes={"transfer_to": "202"})
        )
        [pop] = frames(bob)
        [gone] = frames(alice)
    assert pop["type"] == "pop" and pop["version"] == 2
    assert pop["call"]["caller"]["e164"] == ADA_PHONE and pop["call"]["agent"] == "bob"
    assert pop["transfer"]["from"] == "alice" and pop["transfer"]["to"] == "bob"
    assert pop["customer"]["name"] == "Ada Lovelace"
    assert gone["withdrawn"] is True and gone["reason"] == "transferred"


async def test_abandon_withdraws_the_pop(world: World, database_url: str) -> None:
    async with running_app(database_url) as app:
        alice = app.state["hub"].subscribe(["agent:alice"])
        cid = new_call_id()
        await app.post(event(cid, "offered", caller=ADA_PHONE, agent="alice"))
        await app.post(event(cid, "ended"))
        pop, note = frames(alice)
    assert pop["type"] == "pop"
    assert note["state"] == "abandoned" and note["withdrawn"] is True


@pytest.mark.parametrize(("did", "pops_on"), [(ANSWER_DID, "answered"), (OFF_DID, None)])
async def test_pop_mode_answer_and_off(
    world: World, database_url: str, did: str, pops_on: str | None
) -> None:
    async with running_app(database_url) as app:
        alice = app.state["hub"].subscribe(["agent:alice"])
        cid = new_call_id()
        await app.post(event(cid, "queued", caller=ADA_PHONE, dialed=did))
        await app.post(event(cid, "offered", agent="alice"))
        offered = [m["type"] for m in frames(alice)]
        await app.post(event(cid, "answered", agent="alice"))
        answered = [m["type"] for m in frames(alice)]
    assert "pop" not in offered
    assert ("pop" in answered) == (pops_on == "answered")


async def test_matches_none_withheld_account_ref_and_multiple(
    world: World, database_url: str
) -> None:
    async with running_app(database_url) as app:
        alice = app.state["hub"].subscribe(["agent:alice"])

        async def pop_for(**fields: Any) -> dict[str, Any]:
            cid = new_call_id()
            await app.post(event(cid, "offered", agent="alice", **fields))
            [message] = frames(alice)
            return message

        none = await pop_for(caller="+447700900999")
        assert none["match"]["kind"] == "none" and none["customer"] is None
        assert none["match"]["country"]  # what the number itself says
        withheld = await pop_for(caller="anonymous")
        assert withheld["match"]["kind"] == "withheld"
        assert withheld["call"]["caller"]["withheld"] is True
        by_ref = await pop_for(caller="anonymous", attributes={"account_ref": "ACC-777"})
        assert by_ref["match"]["kind"] == "single"
        assert by_ref["customer"]["id"] == world.ref_customer
        several = await pop_for(caller=SHARED_PHONE)
        assert several["match"]["kind"] == "multiple" and several["customer"] is None
        ids = [c["id"] for c in several["match"]["candidates"]]
        assert set(ids) == {world.shared_a, world.shared_b}

        # The agent picks the older candidate: re-popped as a new version, remembered.
        call_id = several["call"]["id"]
        chosen = await app.http.post(
            f"/api/calls/{call_id}/match",
            json={"customer_id": world.shared_a},
            headers=bearer("alice"),
        )
        assert chosen.status_code == 200, chosen.text
        [repop] = frames(alice)
        assert repop["type"] == "pop" and repop["version"] == several["version"] + 1
        assert repop["customer"]["id"] == world.shared_a
        assert repop["match"]["kind"] == "single"
        again = await pop_for(caller=SHARED_PHONE)
        assert again["match"]["candidates"][0]["id"] == world.shared_a
        assert again["match"]["candidates"][0]["chosen_before"] is True


async def test_a_choice_outside_the_candidates_is_refused_and_not_remembered(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    """A shared number's call takes one of its candidates (422 otherwise: nothing popped,
    nothing remembered); an unknown caller's call may be linked to any customer found."""
    async with running_app(database_url) as app:
        alice = app.state["hub"].subscribe(["agent:alice"])
        several = new_call_id()
        await app.post(event(several, "offered", caller=SHARED_PHONE, agent="alice"))
        [pop] = frames(alice)
        before = await call_row(clean_engine, f"generic:{several}")
        refused = await app.http.post(
            f"/api/calls/generic:{several}/match",
            json={"customer_id": world.ada},
            headers=bearer("alice"),
        )
        assert refused.status_code == 422
        detail = refused.json()["detail"]
        assert detail.startswith("customer_id: ") and str(world.shared_a) in detail
        assert frames(alice) == []
        after = await call_row(clean_engine, f"generic:{several}")
        assert (after["version"], after["customer_id"]) == (before["version"], None)
        async with AsyncSession(clean_engine) as session:
            assert (await session.execute(select(MatchChoice))).all() == []

        stranger = new_call_id()
        await app.post(event(stranger, "offered", caller=UNKNOWN_PHONE, agent="alice"))
        [unknown] = frames(alice)
        assert unknown["match"]["kind"] == "none"
        linked = await app.http.post(
            f"/api/calls/generic:{stranger}/match",
            json={"customer_id": world.ada},
            headers=bearer("alice"),
        )
        assert linked.status_code == 200, linked.text
        assert linked.json()["customer"]["id"] == world.ada
    assert pop["match"]["kind"] == "multiple"


async def test_a_caller_id_arriving_later_resolves_the_call(
    world: World, database_url: str
) -> None:
    async with running_app(database_url) as app:
        alice = app.state["hub"].subscribe(["agent:alice"])
        cid = new_call_id()
        await app.post(event(cid, "queued", caller="", dialed=SALES_DID))
        await app.post(event(cid, "offered", caller=ADA_PHONE, agent="alice"))
        [pop] = frames(alice)
    assert pop["customer"]["id"] == world.ada


async def test_concurrent_events_for_one_call_are_serialised(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    """Many offers at once: a lost update would drop agents from ``offered_to``."""
    agents = ["alice", "bob", "carol", "204", "205", "206", "207", "208"]
    async with running_app(database_url) as app:
        cid = new_call_id()
        await app.post(event(cid, "queued", caller=ADA_PHONE, dialed=SALES_DID))
        await app.calls.drain()
        offers = await asyncio.gather(*(app.post(event(cid, "offered", agent=a)) for a in agents))
        assert all(r.status_code == 202 for r in offers)
        ringing = await call_row(clean_engine, f"generic:{cid}")
        assert sorted(ringing["offered_to"]) == sorted(agents)
        finish = [event(cid, "answered", agent="bob"), event(cid, "held", agent="bob")]
        finish.append(finish[0])  # and a provider retry racing the original
        await asyncio.gather(*(app.post(b) for b in finish))
        await app.calls.drain()
    row = await call_row(clean_engine, f"generic:{cid}")
    assert row["state"] in ("answered", "held") and row["agent"] == "bob"
    assert row["offered_to"] == []
    async with AsyncSession(clean_engine) as session:
        applied = (await session.execute(select(CallEventRecord.applied))).scalars().all()
    assert len(applied) == 1 + len(agents) + 2 and all(applied)


async def test_journal_first_a_failed_apply_keeps_the_event_for_replay(
    world: World, clean_engine: AsyncEngine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = new_call_id()
    async with running_app(database_url) as app:
        await app.post(event(cid, "queued", caller=ADA_PHONE, dialed=SALES_DID))
        real_apply = calls_planning.apply

        def broken(facts: Any, step: Any) -> Any:
            if step.kind == "answered":
                raise RuntimeError("simulated crash while applying")
            return real_apply(facts, step)

        monkeypatch.setattr(calls_planning, "apply", broken)
        response = await app.post(event(cid, "answered", agent="alice"))
        assert response.status_code == 202  # accepted: it is journaled
        monkeypatch.setattr(calls_planning, "apply", real_apply)
    row = await call_row(clean_engine, f"generic:{cid}")
    assert row["state"] == "queued"  # nothing half-applied
    async with AsyncSession(clean_engine) as session:
        flags = (await session.execute(select(CallEventRecord.applied))).scalars().all()
    assert sorted(flags) == [False, True]
    replayed = await replay_unapplied(create_sessionmaker(clean_engine))
    assert replayed == 1
    row = await call_row(clean_engine, f"generic:{cid}")
    assert row["state"] == "answered" and row["agent"] == "alice"


async def test_replay_rebuilds_the_same_state_as_live(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    scenarios = {
        "normal": [("queued", {}), ("offered", {"agent": "alice"}),
                   ("answered", {"agent": "alice"}), ("ended", {})],
        "ring_all": [("offered", {"agent": "alice"}), ("offered", {"agent": "202"}),
                     ("answered", {"agent": "bob"}), ("held", {}), ("resumed", {})],
        "out_of_order": [("ended", {"occurred_at": "2025-05-01T09:10:00Z"}),
                         ("answered", {"agent": "alice", "occurred_at": "2025-05-01T09:01:00Z"}),
                         ("queued", {"occurred_at": "2025-05-01T09:00:00Z"})],
        "transfer": [("queued", {}), ("answered", {"agent": "alice"}),
                     ("transferred", {"attributes": {"transfer_to": "203"}})],
        "abandon": [("queued", {}), ("offered", {"agent": "bob"}),
                    ("queued", {"agent": "bob", "attributes": {"offer_withdrawn": True}}),
                    ("abandoned", {})],
    }  # fmt: skip
    ids = {}
    async with running_app(database_url) as app:
        for name, steps in scenarios.items():
            cid = ids[name] = new_call_id()
            for kind, fields in steps:
                response = await app.post(
                    event(cid, kind, caller=ADA_PHONE, dialed=SALES_DID, **fields)
                )
                assert response.status_code == 202
    live = {n: await call_row(clean_engine, f"generic:{c}") for n, c in ids.items()}
    assert live["normal"]["state"] == "ended" and live["abandon"]["state"] == "abandoned"
    assert live["out_of_order"]["state"] == "ended" and live["transfer"]["agent"] == "carol"
    async with AsyncSession(clean_engine) as session:
        # Damage one row, delete another: the journal alone must bring them back.
        await session.execute(
            update(Call).where(Call.id == f"generic:{ids['ring_all']}").values(state="queued")
        )
        await session.execute(delete(Call).where(Call.id == f"generic:{ids['normal']}"))
        await session.commit()
    assert await replay_journal(create_sessionmaker(clean_engine)) == len(scenarios)
    for name, cid in ids.items():
        rebuilt = await call_row(clean_engine, f"generic:{cid}")
        assert {k: rebuilt[k] for k in STATE_COLUMNS} == {k: live[name][k] for k in STATE_COLUMNS}


async def test_wrapup_once_by_the_agent_then_409(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    async with running_app(database_url) as app:
        cid = new_call_id()
        await app.post(event(cid, "answered", caller=ADA_PHONE, agent="alice"))
        await app.post(event(cid, "ended"))
        url = f"/api/calls/generic:{cid}/wrapup"
        body = {
            "disposition": "sale",
            "notes": "wants the blue teapot",
            "satisfaction": 5,
            "offers": [{"sku": "SKU2", "outcome": "accepted"}],
        }
        assert (await app.http.post(url, json=body, headers=bearer("bob"))).status_code == 403
        bad = await app.http.post(url, json={**body, "satisfaction": 9}, headers=bearer("alice"))
        assert bad.status_code == 422 and "satisfaction" in bad.json()["detail"]
        first = await app.http.post(url, json=body, headers=bearer("alice"))
        assert first.status_code == 201, first.text
        assert first.json()["customer_id"] == world.ada
        second = await app.http.post(url, json=body, headers=bearer("sam", "supervisor"))
        assert second.status_code == 409 and second.json()["error"] == "conflict"
        missing = await app.http.post(
            "/api/calls/generic:nope/wrapup", json=body, headers=bearer("alice")
        )
        assert missing.status_code == 404
        mine = await app.http.get("/api/calls/mine?today=true", headers=bearer("alice"))
        [today] = mine.json()["calls"]
        assert today["id"] == f"generic:{cid}" and today["wrapped_up"] is True
        assert today["customer_name"] == "Ada Lovelace"


async def test_call_api_shows_the_journal_to_supervisors(world: World, database_url: str) -> None:
    async with running_app(database_url) as app:
        cid = new_call_id()
        await app.post(event(cid, "queued", caller=ADA_PHONE, dialed=SALES_DID))
        await app.post(event(cid, "offered", caller=ADA_PHONE, agent="alice"))
        active = await app.http.get("/api/calls?active=true", headers=bearer("sam", "supervisor"))
        assert active.status_code == 200
        [call] = active.json()["calls"]
        assert call["id"] == f"generic:{cid}" and call["state"] == "ringing"
        assert call["caller"] == {
            "raw": ADA_PHONE,
            "e164": ADA_PHONE,
            "national": "07700 900101",
            "withheld": False,
        }
        assert call["match"]["kind"] == "single"
        assert [e["kind"] for e in call["events"]] == ["queued", "offered"]
        assert call["events"][0]["raw"]["call_id"] == cid
        forbidden = await app.http.get("/api/calls?active=true", headers=bearer("alice"))
        assert forbidden.status_code == 403
        assert (await app.http.get("/api/calls?active=true")).status_code == 401
        own = await app.http.get(f"/api/calls/generic:{cid}", headers=bearer("alice"))
        assert own.status_code == 200
        other = await app.http.get(f"/api/calls/generic:{cid}", headers=bearer("bob"))
        assert other.status_code == 403
        missing = await app.http.get("/api/calls/generic:none", headers=bearer("sam", "supervisor"))
        assert missing.status_code == 404


async def test_live_pops_and_receipts(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    from app.calls.agent_ws import handle_client_message
    from app.errors import BadRequest
    from app.users.service import Principal

    async with running_app(database_url) as app:
        cid = new_call_id()
        await app.post(event(cid, "offered", caller=ADA_PHONE, agent="alice"))
        alice = Principal("alice", "agent")
        [live] = await app.calls.actions.live_pops(alice)
        assert live["call"]["id"] == f"generic:{cid}"
        assert await app.calls.actions.live_pops(Principal("bob", "agent")) == []
        await handle_client_message(
            app.calls, alice, {"type": "ack", "call_id": f"generic:{cid}", "version": 1}
        )
        with pytest.raises(BadRequest):
            await handle_client_message(app.calls, alice, {"type": "ack"})
        await app.calls.drain()  # receipts are written in batches
        async with AsyncSession(clean_engine) as session:
            row = (await session.execute(select(PopDelivery))).scalar_one()
            assert row.delivered_at is not None and row.seen_at is None
        await handle_client_message(
            app.calls, alice, {"type": "seen", "call_id": f"generic:{cid}", "version": 1}
        )
        await app.calls.drain()
        async with AsyncSession(clean_engine) as session:
            row = (await session.execute(select(PopDelivery))).scalar_one()
            assert row.seen_at is not None


def _unused(_: App) -> None:
    return None


async def test_an_offer_racing_the_pop_completion_still_gets_the_full_pop(
    world: World, database_url: str
) -> None:
    from tests.calls.support import GENERIC, signed

    async with running_app(database_url, pop_budget_ms=0) as app:
        alice = app.state["hub"].subscribe(["agent:alice"])
        cid = new_call_id()
        for body in (
            event(cid, "queued", caller=ADA_PHONE, dialed=SALES_DID),
            event(cid, "offered", caller=ADA_PHONE, agent="alice"),
        ):
            raw, headers = signed(body)  # no drain in between: the completion races the offer
            assert (await app.http.post(GENERIC, content=raw, headers=headers)).status_code == 202
        await app.calls.drain()
        got = frames(alice)
    # The offer's pop, then the completion as a pop.update; or, when the completion got in
    # between the offer's commit and its publish, the update alone (the older pop dropped).
    assert [m["type"] for m in got] in (["pop", "pop.update"], ["pop"], ["pop.update"])
    versions = [m["version"] for m in got]
    assert versions == sorted(set(versions))
    assert got[-1]["complete"] is True and len(got[-1]["purchases"]) == 2


async def test_replay_folds_through_the_live_planner_account_ref_and_transfer(
    world: World, clean_engine: AsyncEngine, database_url: str
) -> None:
    """A withheld caller who keys an account number in the IVR, then a transfer with notes:
    a row rebuilt from the journal has the live path's match and transfer section."""
    cid = new_call_id()
    steps = [
        ("queued", {"caller": "anonymous"}),
        ("queued", {"caller": "anonymous", "attributes": {"account_ref": "ACC-777"}}),
        ("answered", {"caller": "anonymous", "agent": "alice"}),
        ("transferred", {"caller": "anonymous",
                         "attributes": {"transfer_to": "203", "notes": "wants a refund"}}),
    ]  # fmt: skip
    async with running_app(database_url) as app:
        for kind, fields in steps:
            assert (await app.post(event(cid, kind, dialed=SALES_DID, **fields))).status_code == 202
    live = await call_row(clean_engine, f"generic:{cid}")
    assert live["match"]["kind"] == "single" and live["customer_id"] == world.ref_customer
    assert live["pop"]["transfer"]["notes"] == "wants a refund"
    async with AsyncSession(clean_engine) as session:
        await session.execute(delete(Call).where(Call.id == f"generic:{cid}"))
        await session.commit()
    assert await replay_journal(create_sessionmaker(clean_engine)) == 1
    rebuilt = await call_row(clean_engine, f"generic:{cid}")
    assert {k: rebuilt[k] for k in STATE_COLUMNS} == {k: live[k] for k in STATE_COLUMNS}
    assert rebuilt["match"]["kind"] == "single"
    assert rebuilt["customer_id"] == world.ref_customer
    assert rebuilt["pop"]["transfer"] == live["pop"]["transfer"]
    assert rebuilt["pop"]["customer"]["id"] == world.ref_customer
