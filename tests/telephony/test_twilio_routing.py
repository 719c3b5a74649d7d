"""Routing hints in Twilio's answers, and the pop following the preferred agent.

The voice webhook (signed by Twilio's own ``RequestValidator``) answers TwiML whose
``<Enqueue workflowSid>`` carries a ``<Task>`` with the caller's priority and account manager;
TaskRouter then reserves that worker first, and screenpop pops on whoever is reserved: the
account manager, then, after their reservation times out, the next agent.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.customers.models import Customer
from app.insights.models import CustomerInsight
from app.queues import service as queues
from app.users.models import User
from telephony.twilio import twiml_enqueue
from tests.calls.support import App, running_app
from tests.conftest import add_user
from tests.customers.factories import CustomerSpec, add_customer, phone
from tests.telephony.test_twilio_recipe import AUTH_TOKEN, DID, post

VIP = "+447700900555"
STRANGER = "+447700900556"


async def seed(engine: AsyncEngine) -> int:
    """alice and bob in sales; Vera, high value and potential, managed by alice."""
    await add_user(engine, "alice", extension="201", queues=["sales"])
    await add_user(engine, "bob", extension="202", queues=["sales"])
    async with AsyncSession(engine) as session:
        await queues.upsert_queue(session, name="sales", numbers=[DID])
        vera = await add_customer(session, CustomerSpec("Vera Mont", phones=[phone(VIP)]))
        await session.execute(
            update(Customer)
            .where(Customer.id == vera)
            .values(account_manager="alice", language="de")
        )
        await session.execute(
            insert(CustomerInsight).values(
                customer_id=vera, value_tier="high", segment="loyal", stage="commitment",
                potential=True, details={},
            )
        )  # fmt: skip
        await session.execute(
            update(User).where(User.username == "alice").values(worker_id="WK00000000000000000001")
        )
        await session.commit()
    return vera


def enqueue_of(twiml: str) -> ET.Element:
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    [enqueue] = list(root)
    assert enqueue.tag == "Enqueue"
    return enqueue


def frames(sub: Any) -> list[dict[str, Any]]:
    out = []
    while (frame := sub.get_nowait()) is not None:
        out.append(orjson.loads(frame))
    return out


async def voice(app: App, sid: str, caller: str, query: str = "") -> str:
    fields = {"CallSid": sid, "From": caller, "To": DID, "CallStatus": "ringing"}
    response = await post(app.http, "/telephony/twilio/voice" + query, fields)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return response.text


async def test_taskrouter_enqueue_carries_priority_and_the_preferred_worker(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    vera = await seed(clean_engine)
    async with running_app(database_url, twilio_auth_token=AUTH_TOKEN) as app:
        known = await voice(app, "CA500", VIP, "?workflow_sid=WW0123")
        stranger = await voice(app, "CA501", STRANGER, "?workflow_sid=WW0123")
    enqueue = enqueue_of(known)
    assert enqueue.attrib == {"workflowSid": "WW0123"}
    [task] = list(enqueue)
    assert task.tag == "Task" and task.attrib == {"priority": "35"}  # high 30 + potential 5
    assert not (enqueue.text or "").strip()  # the workflow picks the TaskQueue
    attributes = json.loads(task.text or "")
    assert attributes == {
        "screenpop_match": "single",
        "priority_reasons": ["tier:high", "potential"],
        "language": "de",
        "customer_id": str(vera),
        "value_tier": "high",
        "at_risk": False,
        "over_limit": False,
        "suggested_queue": "sales",
        "preferred_worker": "alice",
        "preferred_worker_sid": "WK00000000000000000001",
        "fallback_after_s": 30,
    }
    [unknown_task] = list(enqueue_of(stranger))
    assert unknown_task.attrib == {"priority": "0"}
    unknown = json.loads(unknown_task.text or "")
    assert unknown["screenpop_match"] == "none" and unknown["preferred_worker"] == ""
    assert "preferred_worker_sid" not in unknown and "customer_id" not in unknown


async def test_plain_enqueue_goes_to_the_queue_a_rule_names(
    clean_engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await seed(clean_engine)
    rules = tmp_path / "routing.toml"
    rules.write_text('[queues]\ntiers = { high = "vip" }\n')
    async with running_app(database_url, twilio_auth_token=AUTH_TOKEN, routing_file=rules) as app:
        known = await voice(app, "CA510", VIP)
        stranger = await voice(app, "CA511", STRANGER)
        forced = await voice(app, "CA512", STRANGER, "?queue=support")
    # Twilio's named queues have no priority: a plain <Enqueue>, to the rule's queue.
    assert enqueue_of(known).text == "vip" and list(enqueue_of(known)) == []
    assert enqueue_of(stranger).text == "sales"  # the dialed number's queue
    assert enqueue_of(forced).text == "support"


async def test_the_pop_goes_to_the_preferred_worker_first_then_to_the_fallback(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    vera = await seed(clean_engine)
    async with running_app(database_url, twilio_auth_token=AUTH_TOKEN) as app:
        hub = app.state["hub"]
        alice, bob = hub.subscribe(["agent:alice"]), hub.subscribe(["agent:bob"])
        twiml = await voice(app, "CA520", VIP, "?workflow_sid=WW0123")
        [task] = list(enqueue_of(twiml))
        # What TaskRouter creates from that <Task>: our attributes plus the call's own.
        attributes = {**json.loads(task.text or ""), "call_sid": "CA520", "from": VIP, "to": DID}
        base = {"TaskAttributes": json.dumps(attributes), "TaskQueueName": "sales"}
        base["TaskSid"] = "WT5"

        async def taskrouter(n: int, event_type: str, **extra: str) -> None:
            fields = {**base, **extra, "EventType": event_type, "EventSid": f"EV52{n}"}
            response = await post(app.http, "/telephony/twilio/taskrouter", fields)
            assert response.status_code == 204, response.text
            await app.calls.drain()

        await taskrouter(0, "task.created")
        assert frames(alice) == [] and frames(bob) == []
        # The workflow's known-worker step reserves the preferred worker first.
        await taskrouter(1, "reservation.created", WorkerName=attributes["preferred_worker"],
                         WorkerSid="WK00000000000000000001", ReservationSid="WR1")  # fmt: skip
        [first] = frames(alice)
        assert first["type"] == "pop" and first["customer"]["id"] == vera
        assert first["call"]["id"] == "twilio:CA520" and first["call"]["state"] == "ringing"
        assert frames(bob) == []
        # Nobody answers within the step's timeout: the next step reserves anyone.
        await taskrouter(2, "reservation.timeout", WorkerName="alice", ReservationSid="WR1")
        withdrawn = frames(alice)
        assert [(m["type"], m.get("withdrawn")) for m in withdrawn] == [("call.state", True)]
        await taskrouter(3, "reservation.created", WorkerName="bob", ReservationSid="WR2")
        [second] = frames(bob)
        assert second["type"] == "pop" and second["customer"]["id"] == vera
        assert frames(alice) == []


def test_the_task_json_survives_xml_escaping() -> None:
    attributes = {"suggested_queue": 'a&b <c> "d"', "preferred_worker": "o'neil"}
    twiml = twiml_enqueue("ignored", workflow_sid='WW"1', task=(7, attributes))
    enqueue = enqueue_of(twiml)
    assert enqueue.attrib == {"workflowSid": 'WW"1'}
    [task] = list(enqueue)
    assert task.attrib == {"priority": "7"} and json.loads(task.text or "") == attributes
    # Without a workflow there is no <Task>: Twilio's named queues know no priority.
    assert list(enqueue_of(twiml_enqueue("sales", task=(7, attributes)))) == []
