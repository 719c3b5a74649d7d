"""GET /api/queues/history: a day's figures by interval from the database, JSON and CSV, on
SQLite and PostgreSQL through the real app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.calls.conftest import build_world
from tests.calls.support import bearer, event, new_call_id, running_app

LONDON = ZoneInfo("Europe/London")
ADMIN = bearer("root", "admin")


async def test_day_history_by_interval_json_and_csv(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    await build_world(clean_engine)
    day = (datetime.now(LONDON) - timedelta(days=1)).date()
    nine = datetime(day.year, day.month, day.day, 9, tzinfo=LONDON)

    def at(seconds: float) -> str:
        return (nine + timedelta(seconds=seconds)).astimezone(UTC).isoformat()

    c1, c2, c3, c4 = (new_call_id() for _ in range(4))
    bodies = [
        # sales 09:00: answered after 10 s, talked 60 s; abandoned after 30 s (> 20 s)
        event(c1, "queued", queue="sales", occurred_at=at(0)),
        event(c1, "answered", agent="201", occurred_at=at(10)),
        event(c1, "ended", occurred_at=at(70)),
        event(c2, "queued", queue="sales", occurred_at=at(60)),
        event(c2, "abandoned", occurred_at=at(90)),
        # sales 09:15: answered after 25 s (> 20 s), talked 60 s
        event(c3, "queued", queue="sales", occurred_at=at(960)),
        event(c3, "answered", agent="202", occurred_at=at(985)),
        event(c3, "ended", occurred_at=at(1045)),
        # support 09:00: abandoned after 5 s (within the threshold: left out of the level)
        event(c4, "queued", queue="support", occurred_at=at(5)),
        event(c4, "abandoned", occurred_at=at(10)),
    ]
    async with running_app(database_url) as app:
        for body in bodies:
            assert (await app.post(body)).status_code == 202
        url = f"/api/queues/history?date={day.isoformat()}"
        response = await app.http.get(url, headers=ADMIN)
        assert response.status_code == 200, response.text
        document = response.json()
        t900 = nine.isoformat()
        t915 = (nine + timedelta(minutes=15)).isoformat()
        assert document == {
            "date": day.isoformat(),
            "intervals": [
                {"start": t900, "queue": "sales", "offered": 2, "answered": 1, "abandoned": 1,
                 "service_level": 0.5, "asa_s": 10.0, "aht_s": 60.0},
                {"start": t900, "queue": "support", "offered": 1, "answered": 0,
                 "abandoned": 1, "service_level": None, "asa_s": None, "aht_s": None},
                {"start": t915, "queue": "sales", "offered": 1, "answered": 1, "abandoned": 0,
                 "service_level": 0.0, "asa_s": 25.0, "aht_s": 60.0},
            ],
        }  # fmt: skip

        hourly = await app.http.get(f"{url}&queue=sales&interval_min=60", headers=ADMIN)
        assert hourly.json()["intervals"] == [
            {"start": t900, "queue": "sales", "offered": 3, "answered": 2, "abandoned": 1,
             "service_level": 0.3333, "asa_s": 17.5, "aht_s": 60.0},
        ]  # fmt: skip

        csv = await app.http.get(f"{url}&queue=support&format=csv", headers=ADMIN)
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines() == [
            "start,queue,offered,answered,abandoned,service_level,asa_s,aht_s",
            f"{t900},support,1,0,1,,,",
        ]

        bad = await app.http.get(f"{url}&interval_min=7", headers=ADMIN)
        assert bad.status_code == 422 and "interval_min" in bad.text
        not_a_date = await app.http.get("/api/queues/history?date=yesterday", headers=ADMIN)
        assert not_a_date.status_code == 422
        # sam supervises no queue: another queue's history is refused, his own is empty.
        sam = bearer("sam", "supervisor")
        refused = await app.http.get(f"{url}&queue=sales", headers=sam)
        assert refused.status_code == 403 and "sales" in refused.text
        mine = await app.http.get(url, headers=sam)
        assert mine.status_code == 200 and mine.json()["intervals"] == []
        agent = await app.http.get(url, headers=bearer("alice"))
        assert agent.status_code == 403


async def test_a_supervisor_watching_star_sees_a_queue_an_event_created(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    from tests.conftest import add_user

    await build_world(clean_engine)
    await add_user(clean_engine, "stella", role="supervisor", queues=["*"])
    call = new_call_id()
    async with running_app(database_url) as app:
        created = event(call, "queued", queue="overflow-night")  # no such queue yet
        assert (await app.post(created)).status_code == 202
        for who in ("stella", "sam"):
            response = await app.http.get("/api/queues", headers=bearer(who, "supervisor"))
            assert response.status_code == 200
            names = [q["name"] for q in response.json()["queues"]]
            assert ("overflow-night" in names) is (who == "stella"), (who, names)
        history = await app.http.get("/api/queues/history", headers=bearer("stella", "supervisor"))
        assert [i["queue"] for i in history.json()["intervals"]] == ["overflow-night"]


async def test_calls_that_name_no_queue_are_the_unrouted_lane_live_and_in_the_history(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    """No queue and no dialed number: counted and listed under ``unrouted`` for every
    supervisor (sam supervises no queue), today and in the history."""
    await build_world(clean_engine)
    lost, taken = new_call_id(), new_call_id()
    async with running_app(database_url) as app:
        for body in (
            event(lost, "queued", caller="+447700900555"),
            event(taken, "queued"),
            event(taken, "answered", agent="201"),
        ):
            assert (await app.post(body)).status_code == 202
        for headers in (ADMIN, bearer("sam", "supervisor")):
            document = (await app.http.get("/api/queues", headers=headers)).json()
            lanes = {q["name"]: q for q in document["queues"]}
            assert "unrouted" in lanes, list(lanes)
            lane = lanes["unrouted"]
            assert [w["call_id"] for w in lane["waiting"]] == [f"generic:{lost}"]
            assert lane["waiting"][0]["caller"]["national"] == "07700 900555"
            assert (lane["offered"], lane["answered"], lane["abandoned"]) == (2, 1, 0)
            history = await app.http.get(
                "/api/queues/history?queue=unrouted&interval_min=1440", headers=headers
            )
            assert history.status_code == 200, history.text
            rows = history.json()["intervals"]
            assert [(r["queue"], r["offered"], r["answered"]) for r in rows] == [("unrouted", 2, 1)]
