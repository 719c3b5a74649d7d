"""The rebuild reads only what the figures use: pop and event fields extracted by the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import Call, CallEventRecord
from app.calls.state_machine import Step
from app.queues import repository
from app.queues.rebuild import rebuild, step_of
from app.queues.service import Roster
from tests.queues.days import T0

NOW = T0 + timedelta(minutes=5)
START = T0 - timedelta(hours=9)  # local midnight in Europe/London
ODD_NAME = 'Zoë "Zed" O\'Brien \\ 李雷'


def big_pop(customer: Any = None, insights: Any = None, **extra: Any) -> dict[str, Any]:
    """A pop document of ~60 KB, like a profile with orders, notes and a history."""
    document: dict[str, Any] = {
        "orders": [{"id": n, "sku": f"SKU-{n:05d}", "note": "x" * 200} for n in range(200)],
        "history": [{"at": T0.isoformat(), "text": "called about an order " * 10}] * 50,
        **extra,
    }
    if customer is not None:
        document["customer"] = customer
    if insights is not None:
        document["insights"] = insights
    return document


# (call id, pop, match, expected customer_name, value_tier, match_kind): what the rebuild gave
# when it read the whole document (a name or tier that is not a string: its ``str``).
CASES: list[tuple[str, Any, dict[str, Any], str | None, str | None, str | None]] = [
    (
        "generic:plain",
        big_pop({"name": "Ada Lovelace", "id": 7}, {"value_tier": "high", "churn": 0.1}),
        {"kind": "single", "candidates": [{"id": 7}]},
        "Ada Lovelace",
        "high",
        "single",
    ),
    (
        "generic:odd",
        big_pop({"name": ODD_NAME}, {"value_tier": "low"}),
        {"kind": "single"},
        ODD_NAME,
        "low",
        "single",
    ),
    ("generic:absent", big_pop(), {"kind": "none"}, None, None, "none"),
    (
        "generic:nulls",
        {**big_pop(), "customer": None, "insights": None},
        {"kind": None},
        None,
        None,
        None,
    ),
    ("generic:json-null-pop", None, {}, None, None, None),
    ("generic:sql-null-pop", null(), {"kind": "withheld"}, None, None, "withheld"),
    (
        "generic:not-objects",
        big_pop([{"name": "In a list"}], "gold"),
        {"kind": "multiple"},
        None,
        None,
        "multiple",
    ),
    (
        "generic:number",
        big_pop({"name": 42}, {"value_tier": ""}),
        {"kind": "single"},
        "42",
        "",
        "single",
    ),
]


async def store_calls(session: AsyncSession) -> None:
    for n, (call_id, pop, match, *_) in enumerate(CASES):
        at = T0 + timedelta(seconds=n)
        session.add(
            Call(
                id=call_id,
                source="generic",
                state="queued",
                caller_raw="+447700900001",
                caller_e164="+447700900001",
                queue="sales",
                offered_to=["alice"] if n % 2 else [],
                match=match,
                pop=pop,
                first_seen_at=at,
                queued_at=at,
            )
        )
    await session.flush()


async def test_rebuild_reads_the_pop_fields_as_the_whole_document_gave_them(
    session: AsyncSession,
) -> None:
    await store_calls(session)
    assert await session.scalar(select(func.count()).where(Call.pop.is_(None))) == 1
    stats = await rebuild(session, Roster(service_levels={"sales": 20}), "Europe/London", NOW)
    got = {
        call_id: (view.customer_name, view.value_tier, view.match_kind)
        for call_id, view in stats.calls.items()
    }
    assert got == {case[0]: tuple(case[3:]) for case in CASES}
    plain = stats.calls["generic:plain"]
    assert plain.caller == {
        "raw": "+447700900001",
        "e164": "+447700900001",
        "national": "07700 900001",
        "withheld": False,
    }
    assert [v.offered_to for v in stats.calls.values()] == [
        ("alice",) if n % 2 else () for n in range(len(CASES))
    ]
    assert len(orjson.dumps(CASES[0][1])) > 50_000  # the documents are large


async def test_calls_since_rows_do_not_carry_the_pop_document(session: AsyncSession) -> None:
    await store_calls(session)
    rows = [row async for row in repository.calls_since(session, START)]
    assert sorted(row.id for row in rows) == sorted(case[0] for case in CASES)
    assert all(isinstance(row, repository.CallRow) for row in rows)
    assert "pop" not in repository.CallRow._fields
    for row in rows:
        assert not any(isinstance(value, dict) for value in row)
        assert len(repr(row)) < 1000
    plain = next(row for row in rows if row.id == "generic:plain")
    assert (plain.pop_customer_name, plain.pop_value_tier, plain.match_kind) == (
        "Ada Lovelace",
        "high",
        "single",
    )


async def test_journal_rows_carry_the_three_values_the_replay_reads(
    session: AsyncSession,
) -> None:
    bulky = {"caller": {"raw": "+447700900001"}, "queue": "sales", "note": "y" * 20_000}
    events: list[dict[str, Any]] = [
        {**bulky, "agent": "201", "attributes": {"offer_withdrawn": True, "extra": "z" * 5000}},
        {**bulky, "agent": 202, "attributes": {"offer_withdrawn": False}},
        {**bulky, "agent": "", "attributes": {"transfer_to": "203", "offer_withdrawn": 0}},
        {**bulky, "agent": None, "attributes": None},
        # Not an object: no path into it (reading the whole event, the replay raised here).
        {**bulky, "attributes": ["not", "an", "object"]},
    ]
    for n, event in enumerate(events):
        session.add(
            CallEventRecord(
                call_id="generic:j",
                source="generic",
                event_id=f"j{n}",
                kind="queued",
                occurred_at=T0 + timedelta(seconds=n),
                received_at=T0 + timedelta(seconds=n),
                event=event,
                raw={},
            )
        )
    await session.flush()
    roster = Roster(aliases={"201": "alice", "202": "bob", "203": "carol"})
    entries = [entry async for entry in repository.journal_since(session, START)]
    assert all(len(repr(entry)) < 500 for entry in entries)

    def at(n: int) -> datetime:
        return T0 + timedelta(seconds=n)

    assert [step_of(roster, entry) for entry in entries] == [
        Step("queued", at(0), agent="alice", withdrawn=True),
        Step("queued", at(1), agent="bob", withdrawn=False),
        Step("queued", at(2), agent=None, withdrawn=False, transfer_to="carol"),
        Step("queued", at(3)),
        Step("queued", at(4)),
    ]
