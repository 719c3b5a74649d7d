"""GET /api/reports/offers and /api/reports/satisfaction against wrap-ups counted by hand.

The wrap-ups (times in UTC; London is on summer time from 29 March 2026, so local April
starts at 2026-03-31 23:00 UTC):

| id | agent | call (queue)        | recorded (UTC)   | grade    | offers                        |
|----|-------|---------------------|------------------|----------|-------------------------------|
| i7 | alice | c5 (sales)          | 02-20 10:00      | 3 agent  | P1 accepted                   |
| i1 | alice | c1 (sales)          | 03-10 10:00      | 5 caller | P1 accepted, P2 declined      |
| i2 | bob   | c2 (support)        | 03-31 22:59 (Mar)| 2 agent  | P1 declined, P3 not offered   |
| i3 | alice | c4 (support, leg 1) | 03-31 23:30 (Apr)| 4 agent  | P2 accepted                   |
| i4 | bob   | c4 (support, leg 2) | 04-02 09:00      | -        | P2 declined, P1 not offered   |
| i5 | carol | c3 (no queue)       | 04-15 12:00      | 1 caller | -                             |
| i6 | alice | no call             | 04-20 12:00      | 3 agent  | P1 accepted                   |
| i8 | bob   | c6 (sales)          | 05-05 12:00      | 5 agent  | P1 accepted                   |

The range is March and April 2026 (local): i7 is the month before (read for ``change``
only), i8 is after it. P3 is not in the products table (no name).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls.models import Call
from app.calls.schemas import WrapUp
from app.customers.models import Interaction, Product
from app.settings import Settings
from tests.queues.test_router import App, add_users, running

RANGE = {"start": "2026-03-01", "end": "2026-04-30"}
CALLS = {"c1": "sales", "c2": "support", "c3": None, "c4": "support", "c5": "sales", "c6": "sales"}
WRAPUPS: list[tuple[str, str | None, str, int | None, str | None, list[tuple[str, str]]]] = [
    ("alice", "c5", "2026-02-20T10:00", 3, "agent", [("P1", "accepted")]),
    ("alice", "c1", "2026-03-10T10:00", 5, "caller", [("P1", "accepted"), ("P2", "declined")]),
    ("bob", "c2", "2026-03-31T22:59", 2, "agent", [("P1", "declined"), ("P3", "not_offered")]),
    ("alice", "c4", "2026-03-31T23:30", 4, "agent", [("P2", "accepted")]),
    ("bob", "c4", "2026-04-02T09:00", None, None, [("P2", "declined"), ("P1", "not_offered")]),
    ("carol", "c3", "2026-04-15T12:00", 1, "caller", []),
    ("alice", None, "2026-04-20T12:00", 3, "agent", [("P1", "accepted")]),
    ("bob", "c6", "2026-05-05T12:00", 5, "agent", [("P1", "accepted")]),
]


async def seed(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session.add_all(
            [Product(sku="P1", name="Red mug"), Product(sku="P2", name="Blue teapot")]
            + [
                Call(id=f"generic:{cid}", source="generic", state="ended", queue=queue)
                for cid, queue in CALLS.items()
            ]
        )
        for agent, call, at, grade, kind, offers in WRAPUPS:
            session.add(
                Interaction(
                    agent=agent,
                    call_id=f"generic:{call}" if call else None,
                    disposition="done",
                    satisfaction=grade,
                    satisfaction_kind=kind,
                    offer_outcomes=[{"sku": s, "outcome": o} for s, o in offers],
                    created_at=datetime.fromisoformat(at).replace(tzinfo=UTC),
                )
            )
        await session.commit()


@pytest.fixture
async def floor(clean_engine: AsyncEngine, settings: Settings) -> AsyncIterator[App]:
    await add_users(
        clean_engine,
        ("alice", "agent", ["sales", "support"]),
        ("sam", "supervisor", ["sales"]),
        ("root", "admin", []),
    )
    await seed(clean_engine)
    async for app in running(settings):
        yield app


async def report(
    app: App, name: str, user: str = "root", role: str = "admin", **params: str
) -> dict[str, Any]:
    response = await app.http.get(
        f"/api/reports/{name}", params={**RANGE, **params}, headers=app.headers(user, role)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def offer(
    key: dict[str, Any], calls: int, offered: int, accepted: int, not_offered: int
) -> dict[str, Any]:
    rate = round(accepted / offered, 4) if offered else None
    return {
        **key,
        "calls": calls,
        "offered": offered,
        "accepted": accepted,
        "conversion_rate": rate,
        "not_offered": not_offered,
    }


def grades(month: str, key: dict[str, Any], g: list[int], change: float | None) -> dict[str, Any]:
    return {
        "month": month,
        **key,
        "graded": len(g),
        "average": round(sum(g) / len(g), 2),
        "satisfied_share": round(sum(x >= 4 for x in g) / len(g), 4),
        "dissatisfied_share": round(sum(x <= 2 for x in g) / len(g), 4),
        "change": change,
    }


async def test_offers_by_product_and_by_agent(floor: App) -> None:
    by_product = await report(floor, "offers")
    assert by_product["columns"] == [
        "sku", "product", "calls", "offered", "accepted", "conversion_rate", "not_offered"
    ]  # fmt: skip
    assert (by_product["start"], by_product["end"], by_product["by"]) == (
        "2026-03-01", "2026-04-30", "product"
    )  # fmt: skip
    assert by_product["rows"] == [
        offer({"sku": "P1", "product": "Red mug"}, 3, 3, 2, 1),  # i1, i2, i6; i4 not offered
        offer({"sku": "P2", "product": "Blue teapot"}, 3, 3, 1, 0),  # i1, i3 (Apr), i4
        offer({"sku": "P3", "product": None}, 0, 0, 0, 1),  # only not offered (i2)
    ]
    by_agent = await report(floor, "offers", by="agent")
    assert by_agent["rows"] == [
        offer({"agent": "alice"}, 3, 4, 3, 0),  # i1, i3, i6 (i7 before, out of range)
        offer({"agent": "bob"}, 2, 2, 0, 2),  # i2, i4: both legs of c4 count
    ]


async def test_satisfaction_by_queue_and_agent_by_local_month(floor: App) -> None:
    by_queue = await report(floor, "satisfaction")
    assert by_queue["columns"] == [
        "month", "queue", "graded", "average", "satisfied_share", "dissatisfied_share", "change"
    ]  # fmt: skip
    assert by_queue["rows"] == [
        grades("2026-03", {"queue": "sales"}, [5], 2.0),  # February's sales average: 3 (i7)
        grades("2026-03", {"queue": "support"}, [2], None),  # i2 at 23:59 local, 31 March
        grades("2026-04", {"queue": "support"}, [4], 2.0),  # i3 at 00:30 local; i4 ungraded
        grades("2026-04", {"queue": "unrouted"}, [1, 3], None),  # no queue, no call
    ]
    by_agent = await report(floor, "satisfaction", by="agent")
    assert by_agent["rows"] == [
        grades("2026-03", {"agent": "alice"}, [5], 2.0),
        grades("2026-03", {"agent": "bob"}, [2], None),
        grades("2026-04", {"agent": "alice"}, [4, 3], -1.5),
        grades("2026-04", {"agent": "carol"}, [1], None),
    ]
    callers = await report(floor, "satisfaction", kind="caller")
    assert callers["rows"] == [
        grades("2026-03", {"queue": "sales"}, [5], None),  # i7 was the agent's grade
        grades("2026-04", {"queue": "unrouted"}, [1], None),
    ]


async def test_a_supervisor_sees_their_queues_and_the_unrouted_lane(floor: App) -> None:
    offers = await report(floor, "offers", user="sam", role="supervisor")
    assert offers["rows"] == [
        offer({"sku": "P1", "product": "Red mug"}, 2, 2, 2, 0),  # i1 (sales), i6 (no call)
        offer({"sku": "P2", "product": "Blue teapot"}, 1, 1, 0, 0),  # i1
    ]
    satisfaction = await report(floor, "satisfaction", user="sam", role="supervisor")
    assert [(r["month"], r["queue"]) for r in satisfaction["rows"]] == [
        ("2026-03", "sales"),
        ("2026-04", "unrouted"),
    ]


async def test_csv_is_the_json_table(floor: App) -> None:
    for name, by in (("offers", "product"), ("offers", "agent"), ("satisfaction", "agent")):
        table = await report(floor, name, by=by)
        response = await floor.http.get(
            f"/api/reports/{name}",
            params={**RANGE, "by": by, "format": "csv"},
            headers=floor.headers("root", "admin"),
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        reader = csv.DictReader(io.StringIO(response.text))
        assert reader.fieldnames == table["columns"]
        expected = [
            {c: "" if row[c] is None else str(row[c]) for c in table["columns"]}
            for row in table["rows"]
        ]
        assert list(reader) == expected


async def test_agents_are_refused_and_bad_parameters_are_422(floor: App) -> None:
    for name in ("offers", "satisfaction"):
        assert (await floor.http.get(f"/api/reports/{name}")).status_code == 401
        refused = await floor.http.get(
            f"/api/reports/{name}", headers=floor.headers("alice", "agent")
        )
        assert refused.status_code == 403
        admin = floor.headers("root", "admin")
        for params in (
            {"start": "2026-05-01", "end": "2026-04-30"},
            {"by": "customer"},
            {"format": "xml"},
            # Absurd dates and spans: once a month boundary per month of a millennium (a hang).
            {"start": "0001-01-01"},
            {"start": "2000-01-01", "end": "2999-12-31"},
            {"end": "9999-12-31"},
        ):
            bad = await floor.http.get(f"/api/reports/{name}", params=params, headers=admin)
            assert bad.status_code == 422, (name, params)
    admin = floor.headers("root", "admin")
    bad_kind = await floor.http.get("/api/reports/satisfaction?kind=boss", headers=admin)
    assert bad_kind.status_code == 422
    upside_down = await floor.http.get(
        "/api/reports/offers?start=2026-05-01&end=2026-04-30", headers=admin
    )
    assert "after end" in upside_down.text
    too_long = await floor.http.get("/api/reports/offers?start=2010-01-01", headers=admin)
    assert too_long.status_code == 422 and "at most 3660" in too_long.text


def test_a_wrap_up_records_one_outcome_per_product() -> None:
    offers = [{"sku": "P1", "outcome": "accepted"}, {"sku": "P1", "outcome": "declined"}]
    with pytest.raises(ValidationError, match="listed twice"):
        WrapUp.model_validate({"disposition": "done", "offers": offers})
    assert len(WrapUp.model_validate({"disposition": "done", "offers": offers[:1]}).offers) == 1
