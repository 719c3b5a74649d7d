"""QueueStats fed scripted ``call.change``/``pop.pushed``/presence messages."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from app.queues.latency import bucket_of, bucket_upper_ms
from app.queues.stats import QueueStats
from tests.queues.days import T0, connections, hand_day, s
from tests.queues.switchboard import Switchboard

LEVELS = {"sales": 20, "support": 30}


def play(stats: QueueStats, messages: list[tuple[str, dict[str, Any]]], now: datetime) -> None:
    for _, message in messages:
        if message["type"] == "call.change":
            stats.apply_call_change(message, now=now)
        elif message["type"] == "pop.pushed":
            stats.apply_pop_pushed(message, now=now)
        else:
            stats.apply_presence(message, now=now)


def fed(sb: Switchboard, now: datetime, tz: str = "Europe/London") -> QueueStats:
    stats = QueueStats(tz, LEVELS, now=T0)
    play(stats, connections(T0 - timedelta(minutes=1)) + sb.messages, now)
    return stats


def queue(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in snapshot["queues"] if q["name"] == name)


def agent(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in snapshot["agents"] if a["username"] == name)


def test_calls_that_name_no_queue_count_in_the_unrouted_lane() -> None:
    sb = Switchboard()
    sb.queued("generic:u1", s(0), None, match_kind="none", customer_name=None, value_tier=None)
    sb.queued("generic:u2", s(5), None)
    sb.offered("generic:u2", s(6), "alice", latency_ms=10)
    sb.answered("generic:u2", s(10), "alice")
    sb.queued("generic:routed", s(12), "sales")
    snap = fed(sb, s(30)).snapshot(now=s(30))
    lane = queue(snap, "unrouted")
    assert [w["call_id"] for w in lane["waiting"]] == ["generic:u1"]
    assert lane["waiting"][0]["waiting_s"] == 30.0
    assert (lane["offered"], lane["answered"], lane["abandoned"]) == (2, 1, 0)
    assert lane["service_level"] == 0.5  # u1 waits 30 s > the default 20 s
    assert queue(snap, "sales")["offered"] == 1
    assert snap["pop_health"]["calls"] == 3 and snap["pop_health"]["pops"] == 1


def test_waiting_calls_in_order_with_time_waiting() -> None:
    sb = Switchboard()
    sb.queued("generic:a", s(0), "sales", customer_name="Ada", value_tier="high")
    sb.queued("generic:b", s(12), "sales", customer_name=None, value_tier=None)
    sb.queued("generic:c", s(5), "support")
    snap = fed(sb, s(30)).snapshot(now=s(30))
    sales = queue(snap, "sales")
    assert [w["call_id"] for w in sales["waiting"]] == ["generic:a", "generic:b"]
    assert sales["waiting"][0] == {
        "call_id": "generic:a",
        "channel": "phone",
        "caller": {
            "raw": "+447700900001",
            "e164": "+447700900001",
            "national": "07700 900001",
            "withheld": False,
        },
        "customer_name": "Ada",
        "value_tier": "high",
        "waiting_s": 30.0,
    }
    assert sales["waiting"][1]["waiting_s"] == 18.0
    assert sales["longest_wait_s"] == 30.0
    assert (sales["offered"], sales["answered"], sales["abandoned"]) == (2, 0, 0)
    # Nothing answered yet, but a waits 30 s > 20 s: it already counts against the level.
    assert sales["service_level"] == 0.0 and sales["waiting_over_threshold"] == 1
    assert sales["asa_s"] is None
    support = queue(snap, "support")
    assert support["offered"] == 1
    assert support["service_level"] is None and support["waiting_over_threshold"] == 0


def test_answered_within_and_beyond_threshold() -> None:
    sb = Switchboard()
    sb.queued("generic:a", s(0), "sales")
    sb.queued("generic:b", s(0), "sales")
    sb.answered("generic:a", s(20), "alice")  # exactly the threshold: within
    sb.answered("generic:b", s(21), "bob")  # one second beyond
    sb.ended("generic:a", s(80))
    sales = queue(fed(sb, s(90)).snapshot(now=s(90)), "sales")
    assert sales["answered"] == 2
    assert sales["service_level"] == 0.5
    assert sales["asa_s"] == 20.5
    assert sales["aht_s"] == 60.0  # only finished calls have a handle time
    assert sales["waiting"] == [] and sales["longest_wait_s"] == 0.0


def test_abandoned_while_queued_and_while_ringing() -> None:
    sb = Switchboard()
    for n in range(4):
        sb.queued(f"generic:{n}", s(n), "sales")
    sb.ended("generic:0", s(30))
    sb.offered("generic:1", s(5), "alice")
    sb.ended("generic:1", s(9))
    stats = fed(sb, s(40))
    snap = stats.snapshot(now=s(40))
    sales = queue(snap, "sales")
    assert (sales["offered"], sales["abandoned"], sales["abandon_rate"]) == (4, 2, 0.5)
    assert [w["call_id"] for w in sales["waiting"]] == ["generic:2", "generic:3"]
    # Service level: nothing answered; 0 abandoned after 30 s > 20 s counts, 1 after 8 s
    # does not; 2 and 3 have waited 38 s and 37 s > 20 s.
    assert sales["waiting_over_threshold"] == 2
    assert sales["service_level"] == 0.0
    # The agent whose phone rang is back where they were, not wrapping up.
    assert agent(snap, "alice")["state"] == "available"


def test_ring_no_answer_is_not_an_abandon() -> None:
    sb = Switchboard()
    sb.queued("generic:a", s(0), "sales")
    sb.offered("generic:a", s(1), "alice")
    stats = fed(sb, s(5))
    assert agent(stats.snapshot(now=s(5)), "alice")["state"] == "ringing"
    sb2 = Switchboard()
    sb2.calls, sb2.messages = sb.calls, []
    sb2.withdrawn("generic:a", s(16), "alice")
    play(stats, sb2.messages, s(16))
    snap = stats.snapshot(now=s(20))
    sales = queue(snap, "sales")
    assert (sales["offered"], sales["abandoned"], sales["answered"]) == (1, 0, 0)
    assert [w["call_id"] for w in sales["waiting"]] == ["generic:a"]
    assert agent(snap, "alice") | {"in_state_s": None} == {
        "username": "alice",
        "state": "available",
        "since": s(16).isoformat(),
        "in_state_s": None,
        "call_id": None,
        "handled": 0,
    }


def test_ring_all_answer_withdraws_the_others() -> None:
    sb = Switchboard()
    sb.queued("generic:a", s(0), "sales")
    sb.offered("generic:a", s(1), "alice")
    sb.offered("generic:a", s(1), "bob")
    sb.answered("generic:a", s(4), "bob")
    snap = fed(sb, s(5)).snapshot(now=s(5))
    assert agent(snap, "alice")["state"] == "available"
    assert agent(snap, "bob")["state"] == "on_call"
    assert agent(snap, "bob")["call_id"] == "generic:a"
    assert (agent(snap, "alice")["handled"], agent(snap, "bob")["handled"]) == (0, 1)


def test_transfer_counts_one_offer_one_answer_and_credits_both_agents() -> None:
    sb = Switchboard()
    sb.queued("generic:a", s(0), "sales")
    sb.offered("generic:a", s(2), "alice")
    sb.answered("generic:a", s(5), "alice")
    sb.transferred("generic:a", s(60), "bob")  # connected: bob has the caller at once
    stats = fed(sb, s(61))
    snap = stats.snapshot(now=s(61))
    assert agent(snap, "alice")["state"] == "wrap_up"
    assert (agent(snap, "bob")["state"], agent(snap, "bob")["since"]) == (
        "on_call",
        s(60).isoformat(),
    )
    assert queue(snap, "sales")["waiting"] == []  # transferred, not waiting in the queue
    seen = len(sb.messages)
    sb.answered("generic:a", s(65), "bob")  # the PBX reports bob's leg too: nothing new
    sb.ended("generic:a", s(125))
    play(stats, sb.messages[seen:], s(130))
    snap = stats.snapshot(now=s(130))
    sales = queue(snap, "sales")
    assert (sales["offered"], sales["answered"], sales["abandoned"]) == (1, 1, 0)
    assert sales["asa_s"] == 5.0  # to the first answer
    assert sales["aht_s"] == 120.0  # first answer to hang-up, across the transfer
    assert [agent(snap, a)["handled"] for a in ("alice", "bob")] == [1, 1]
    assert agent(snap, "bob")["state"] == "wrap_up"


def test_transfer_of_a_ringing_call_rings_the_new_agent() -> None:
    sb = Switchboard()
    sb.queued("generic:a", s(0), "sales")
    sb.offered("generic:a", s(2), "alice")
    sb.transferred("generic:a", s(6), "bob")
    snap = fed(sb, s(7)).snapshot(now=s(7))
    assert agent(snap, "alice")["state"] == "available"
    assert (agent(snap, "bob")["state"], agent(snap, "bob")["call_id"]) == ("ringing", "generic:a")
    assert [w["call_id"] for w in queue(snap, "sales")["waiting"]] == ["generic:a"]


def test_the_same_message_twice_changes_nothing() -> None:
    sb = Switchboard()
    hand_day(sb)
    once = fed(sb, s(260)).snapshot(now=s(260))
    twice = QueueStats("Europe/London", LEVELS, now=T0)
    play(twice, connections(T0 - timedelta(minutes=1)), s(260))
    for item in sb.messages:
        play(twice, [item, item], s(260))
    assert twice.snapshot(now=s(260)) == once


def test_hand_day_every_figure() -> None:
    sb = Switchboard()
    hand_day(sb)
    snap = fed(sb, s(260)).snapshot(now=s(260))
    assert_hand_day(snap)


def assert_hand_day(snap: dict[str, Any]) -> None:
    """Every figure of ``hand_day`` at T0+260 s, worked out by hand."""
    sales, support = queue(snap, "sales"), queue(snap, "support")
    assert {k: v for k, v in sales.items() if k != "waiting"} == {
        "name": "sales",
        "longest_wait_s": 0.0,
        "offered": 4,
        "answered": 3,
        "abandoned": 1,
        "abandon_rate": 0.25,
        "channels": {"phone": {"offered": 4, "answered": 3, "abandoned": 1}},
        # c1 (8 s) and c6 (5 s) of c1, c2 (30 s), c6 and c3 (abandoned after 30 s > 20 s)
        "service_level": 0.5,
        "service_level_s": 20,
        "waiting_over_threshold": 0,
        "asa_s": 14.3,  # (8 + 30 + 5) / 3
        "aht_s": 90.0,  # c1 120 s, c2 60 s; c6 still talking
    }
    assert sales["waiting"] == []
    assert {k: v for k, v in support.items() if k != "waiting"} == {
        "name": "support",
        "longest_wait_s": 60.0,
        "offered": 2,
        "answered": 1,
        "abandoned": 0,
        "abandon_rate": 0.0,
        "channels": {"phone": {"offered": 2, "answered": 1, "abandoned": 0}},
        "service_level": 0.0,  # c4 waited 35 s > 30 s; c5 has waited 60 s so far
        "service_level_s": 30,
        "waiting_over_threshold": 1,
        "asa_s": 35.0,
        "aht_s": 135.0,  # 40 s -> 175 s across the transfer
    }
    assert [(w["call_id"], w["waiting_s"], w["customer_name"]) for w in support["waiting"]] == [
        ("generic:c5", 60.0, None)
    ]
    assert support["waiting"][0]["channel"] == "phone"
    assert snap["channels"] == {"phone": {"offered": 6, "answered": 4, "abandoned": 1}}
    expected_agents = {
        "alice": ("on_call", s(155), "generic:c6", 2),
        "bob": ("wrap_up", s(70), "generic:c4", 1),
        "carol": ("wrap_up", s(100), "generic:c2", 1),
        "dave": ("wrap_up", s(175), "generic:c4", 1),
    }
    got = {
        a["username"]: (a["state"], a["since"], a["call_id"], a["handled"]) for a in snap["agents"]
    }
    assert got == {u: (st, at.isoformat(), c, h) for u, (st, at, c, h) in expected_agents.items()}
    assert snap["pop_health"] == {
        "calls": 6,
        "match_rate": 0.6667,  # c1 c2 c3 single, c5 multiple
        "multi_match_rate": 0.1667,
        "unmatched": 1,  # c4
        "withheld": 1,  # c6
        "pops": 5,  # 8, 12, 20, 30, 45 ms
        "pop_p50_ms": round(bucket_upper_ms(bucket_of(20)), 1),
        "pop_p95_ms": round(bucket_upper_ms(bucket_of(45)), 1),
    }
    assert (
        20 <= snap["pop_health"]["pop_p50_ms"] <= 21
        and 45 <= snap["pop_health"]["pop_p95_ms"] <= 47.3
    )


def test_midnight_resets_the_figures_in_the_local_time_zone() -> None:
    tz = "America/New_York"  # UTC-4 in May: local midnight is 04:00 UTC
    eve = datetime.fromisoformat("2026-05-05T03:50:00+00:00")  # 23:50 local
    sb = Switchboard()
    sb.queued("generic:late", eve, "sales")
    sb.answered("generic:late", eve + timedelta(seconds=10), "alice")
    sb.ended("generic:late", eve + timedelta(seconds=70))
    sb.queued("generic:across", eve + timedelta(minutes=9), "sales")  # 23:59 local
    stats = QueueStats(tz, LEVELS, now=eve)
    play(stats, sb.messages, eve + timedelta(minutes=9))
    before = stats.snapshot(now=eve + timedelta(minutes=9, seconds=30))
    assert queue(before, "sales")["offered"] == 2
    assert agent(before, "alice")["handled"] == 1
    after_midnight = eve + timedelta(minutes=11)  # 00:01 local
    snap = stats.snapshot(now=after_midnight)
    assert snap["day"] == "2026-05-05"
    sales = queue(snap, "sales")
    assert (sales["offered"], sales["answered"], sales["abandoned"]) == (0, 0, 0)
    assert [w["call_id"] for w in sales["waiting"]] == ["generic:across"]  # still waiting
    assert sales["waiting"][0]["waiting_s"] == 120.0
    assert agent(snap, "alice")["handled"] == 0
    # Yesterday's call answered today counts for yesterday, not today.
    more = Switchboard()
    more.calls = sb.calls
    more.answered("generic:across", after_midnight, "bob")
    play(stats, more.messages, after_midnight)
    sales = queue(stats.snapshot(now=after_midnight), "sales")
    assert (sales["offered"], sales["answered"], sales["waiting"]) == (0, 0, [])
    assert agent(stats.snapshot(now=after_midnight), "bob")["handled"] == 1  # answered today
    assert "generic:late" not in stats.calls  # finished calls of past days are dropped


@pytest.mark.parametrize(
    ("messages", "state", "since"),
    [
        ([("agent.connection", True)], "available", 0),
        ([("agent.connection", True), ("agent.status", "away")], "away", 1),
        # Closing the last screen starts the offline clock; the state stays for now.
        ([("agent.connection", True), ("agent.connection", False)], "available", 0),
        # Away survives a reload (the page closes and connects again).
        (
            [
                ("agent.connection", True),
                ("agent.status", "away"),
                ("agent.connection", False),
                ("agent.connection", True),
            ],
            "away",
            1,
        ),
        # Two screens open: closing one keeps the agent signed in, since the first.
        ([("agent.connection", True)] * 2 + [("agent.connection", False)], "available", 0),
        ([("agent.status", "away"), ("agent.status", "available")], "available", 1),
    ],
)
def test_presence_from_connection_and_status(
    messages: list[tuple[str, object]], state: str, since: int
) -> None:
    stats = QueueStats("UTC", now=T0)
    for n, (kind, value) in enumerate(messages):
        message: dict[str, Any] = {"type": kind, "username": "alice", "at": s(n).isoformat()}
        message["connected" if kind == "agent.connection" else "state"] = value
        stats.apply_presence(message, now=s(n))
    assert stats.agents["alice"].state == state
    assert stats.agents["alice"].since == s(since)
    assert "alice" in stats.dirty_agents  # to be persisted


def test_disconnect_during_a_call_keeps_the_call() -> None:
    sb = Switchboard()
    sb.queued("generic:a", s(0), "sales")
    sb.answered("generic:a", s(3), "alice")
    stats = fed(sb, s(3))
    stats.apply_presence(
        {
            "type": "agent.connection",
            "username": "alice",
            "connected": False,
            "at": s(4).isoformat(),
        },
        now=s(4),
    )
    assert stats.agents["alice"].state == "on_call"


def test_a_repushed_pop_replaces_its_latency() -> None:
    stats = QueueStats("UTC", LEVELS, now=T0)
    sb = Switchboard()
    sb.queued("generic:a", s(0), "sales")
    play(stats, sb.messages, s(0))
    for latency in (400.0, 10.0):
        stats.apply_pop_pushed(
            {"type": "pop.pushed", "call_id": "generic:a", "agent": "alice", "queue": "sales",
             "latency_ms": latency},
            now=s(1),
        )  # fmt: skip
    health = stats.snapshot(now=s(2))["pop_health"]
    assert health["pops"] == 1
    assert health["pop_p95_ms"] == round(bucket_upper_ms(bucket_of(10.0)), 1)


def test_scoped_snapshot_lists_only_the_asked_queues_and_agents() -> None:
    sb = Switchboard()
    hand_day(sb)
    snap = fed(sb, s(260)).snapshot(queues=["support", "empty"], agents=["bob"], now=s(260))
    assert [q["name"] for q in snap["queues"]] == ["empty", "support"]
    assert queue(snap, "empty")["offered"] == 0
    assert [a["username"] for a in snap["agents"]] == ["bob"]
    health = snap["pop_health"]
    # Only support's calls: c4 (none) and c5 (multiple); its one pop, c4 to bob (8 ms).
    assert (health["calls"], health["unmatched"], health["multi_match_rate"]) == (2, 1, 0.5)
    assert health["pops"] == 1


def test_finished_calls_are_forgotten_and_their_late_events_ignored() -> None:
    sb = Switchboard()
    sb.queued("generic:a", s(0), "sales")
    sb.answered("generic:a", s(5), "alice")
    sb.ended("generic:a", s(65))
    stats = fed(sb, s(65))
    assert "generic:a" in stats.calls
    seen = len(sb.messages)
    sb.answered("generic:a", s(70), "bob")  # late, after the end: the machine ignores it
    sb.queued("generic:b", s(65 + 11 * 60), "sales")
    play(stats, sb.messages[seen:], s(65 + 11 * 60))
    assert "generic:a" not in stats.calls  # memory is bounded by calls in progress
    sales = queue(stats.snapshot(now=s(65 + 11 * 60)), "sales")
    assert (sales["offered"], sales["answered"], sales["aht_s"]) == (2, 1, 60.0)
    assert stats.handled == {"alice": 1}


def test_service_level_counts_callers_still_waiting_past_the_threshold() -> None:
    sb = Switchboard()
    sb.queued("generic:a", s(0), "sales")
    sb.answered("generic:a", s(10), "alice")  # within 20 s
    sb.queued("generic:b", s(5), "sales")  # still waiting at 30 s: 25 s > 20 s
    sb.queued("generic:c", s(20), "sales")  # still waiting: 10 s, not counted yet
    sales = queue(fed(sb, s(30)).snapshot(now=s(30)), "sales")
    assert sales["waiting_over_threshold"] == 1
    assert sales["service_level"] == 0.5
