"""A recorded day folded live equals the same day rebuilt from the database, figure by figure."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.queues import repository
from app.queues.call_view import FINISHED
from app.queues.rebuild import rebuild
from app.queues.service import Roster
from app.queues.stats import QueueStats
from app.users.directory import Agent
from tests.queues.days import AGENTS, T0, connections, hand_day, random_day, s
from tests.queues.switchboard import Switchboard
from tests.queues.test_stats import LEVELS, assert_hand_day, play

EXTENSIONS = {"alice": "201", "bob": "202", "carol": "203", "dave": "204"}


def roster() -> Roster:
    return Roster(
        service_levels={**LEVELS, "billing": 15},
        users={a: Agent(a, "agent", frozenset(LEVELS)) for a in AGENTS},
        aliases={ext: a for a, ext in EXTENSIONS.items()},
    )


async def live_and_rebuilt(
    session: AsyncSession, sb: Switchboard, now: datetime
) -> tuple[QueueStats, QueueStats]:
    live = QueueStats("Europe/London", roster().service_levels, now=T0)
    play(live, connections(T0 - timedelta(minutes=1)) + sb.messages, now)
    await sb.store(session)
    # What the runtime's presence writer would have written.
    await repository.upsert_presences(
        session,
        [
            {"username": v.username, "state": v.state, "since": v.since, "call_id": v.call_id}
            for v in live.dirty_agents.values()
        ],
    )
    return live, await rebuild(session, roster(), "Europe/London", now)


async def test_hand_day_rebuilt_from_the_database_gives_every_figure(
    session: AsyncSession,
) -> None:
    sb = Switchboard(extensions=EXTENSIONS)  # the journal names agents by extension
    hand_day(sb)
    now = s(260)
    live, rebuilt = await live_and_rebuilt(session, sb, now)
    snap = rebuilt.snapshot(now=now)
    assert_hand_day(snap)
    assert snap == live.snapshot(now=now)
    sales = next(q for q in snap["queues"] if q["name"] == "sales")
    assert sales["offered"] == 4  # not a vacuous equality


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_day_live_equals_rebuild(session: AsyncSession, seed: int) -> None:
    sb = Switchboard(extensions=EXTENSIONS)
    random_day(sb, seed)
    now = s(300 * 20 + 400)
    live, rebuilt = await live_and_rebuilt(session, sb, now)
    expected = live.snapshot(now=now)
    assert rebuilt.snapshot(now=now) == expected
    total = sum(q["offered"] for q in expected["queues"])
    assert total == 300
    assert sum(q["abandoned"] for q in expected["queues"]) > 10
    assert sum(a["handled"] for a in expected["agents"]) > 200
    # And the rebuilt statistics carry on exactly as the live ones do.
    later = Switchboard(extensions=EXTENSIONS)
    later.calls = sb.calls
    open_calls = [c for c in sb.calls.values() if c.state in ("answered", "queued", "ringing")]
    assert open_calls
    for n, call in enumerate(open_calls):
        later.ended(call.id, now + timedelta(seconds=n))
    for stats in (live, rebuilt):
        play(stats, later.messages, now + timedelta(minutes=5))
    end = now + timedelta(minutes=5)
    assert rebuilt.snapshot(now=end) == live.snapshot(now=end)


async def test_calls_of_yesterday_only_show_while_waiting(session: AsyncSession) -> None:
    sb = Switchboard()
    yesterday = T0 - timedelta(days=1)
    sb.queued("generic:old-done", yesterday, "sales")
    sb.ended("generic:old-done", yesterday + timedelta(seconds=30))
    sb.queued("generic:old-waiting", T0 - timedelta(hours=10), "sales")  # 23:00 yesterday
    sb.queued("generic:today", s(5), "sales")
    now = s(60)
    live, rebuilt = await live_and_rebuilt(session, sb, now)
    snap = rebuilt.snapshot(now=now)
    sales = next(q for q in snap["queues"] if q["name"] == "sales")
    assert sales["offered"] == 1
    assert [w["call_id"] for w in sales["waiting"]] == ["generic:old-waiting", "generic:today"]
    assert sales["longest_wait_s"] == 10 * 3600 + 60
    assert snap == live.snapshot(now=now)


async def test_presence_rows_behind_the_calls_are_brought_up_to_them(
    session: AsyncSession,
) -> None:
    """Presence rows are written in batches, so an instance that starts while others run may
    read them from before the last changes: nobody is then left ringing or talking on a call
    that is over, and an agent on a live call is shown on it."""
    sb = Switchboard(extensions=EXTENSIONS)
    hand_day(sb)
    # The rows as written 20 s into the day: alice talking on c1, bob ringing with c2.
    early = QueueStats("Europe/London", roster().service_levels, now=T0)
    so_far = [
        m
        for m in sb.messages
        if m[1]["type"] == "call.change" and datetime.fromisoformat(m[1]["occurred_at"]) <= s(20)
    ]
    play(early, connections(T0 - timedelta(minutes=1)) + so_far, s(20))
    assert early.agents["alice"].state == "on_call" and early.agents["bob"].state == "ringing"
    await sb.store(session)
    await repository.upsert_presences(
        session,
        [
            {"username": v.username, "state": v.state, "since": v.since, "call_id": v.call_id}
            for v in early.agents.values()
        ],
    )
    now = s(260)
    rebuilt = await rebuild(session, roster(), "Europe/London", now)
    states = {u: (v.state, v.call_id) for u, v in rebuilt.agents.items()}
    assert states["alice"] == ("on_call", "generic:c6")  # c1 is over; c6 is hers now
    assert states["bob"] == ("available", None)  # c2 rang someone else and is over
    for view in rebuilt.agents.values():
        if view.state in ("ringing", "on_call"):
            assert rebuilt.calls[str(view.call_id)].state not in FINISHED, view
