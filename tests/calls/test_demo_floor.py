"""The demo PBX's choice of agent (``choose_agent``) on real presence figures: only agents with
a page open who are available, people first, the longest available first."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from app.calls.demo_floor import SIM_AGENTS, DemoTiming, choose_agent, sim_wrap_up, takes_calls
from app.calls.schemas import WrapUp
from app.queues.service import Roster
from app.queues.stats import QueueStats
from app.users.directory import Agent

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BOTH = frozenset({"sales", "support"})


def roster() -> Roster:
    people = {
        "alice": Agent("alice", "agent", BOTH),
        "bob": Agent("bob", "agent", BOTH),
        "carol": Agent("carol", "agent", frozenset({"sales"})),
        "dave": Agent("dave", "agent", BOTH),
        "sam": Agent("sam", "supervisor", BOTH),
        "sue": Agent("sue", "supervisor", BOTH),
    }
    people.update({name: Agent(name, "agent", BOTH) for name in SIM_AGENTS})
    # sue has an extension: a supervisor who takes calls.
    return Roster(users=people, aliases={"201": "alice", "301": "sue"})


def open_page(stats: QueueStats, username: str, minutes: float) -> None:
    at = T0 + timedelta(minutes=minutes)
    stats.apply_presence(
        {"type": "agent.connection", "username": username, "connected": True, "at": at.isoformat()},
        now=at,
    )


def set_status(stats: QueueStats, username: str, state: str, minutes: float) -> None:
    at = T0 + timedelta(minutes=minutes)
    stats.apply_presence(
        {"type": "agent.status", "username": username, "state": state, "at": at.isoformat()},
        now=at,
    )


def test_nobody_there_means_nobody_is_offered_a_call() -> None:
    stats = QueueStats("UTC", now=T0)
    assert choose_agent(stats, roster(), "sales", SIM_AGENTS) is None
    # Known, even available by an old status, but no page open: not there.
    set_status(stats, "bob", "available", 1)
    assert stats.agents["bob"].state == "available"
    assert choose_agent(stats, roster(), "sales", SIM_AGENTS) is None


def test_away_ringing_on_call_and_wrap_up_are_never_offered() -> None:
    stats = QueueStats("UTC", now=T0)
    for n, name in enumerate(("carol", "dave", "bob", "alice")):
        open_page(stats, name, n)
    set_status(stats, "carol", "away", 5)
    stats.agent("dave").ring("generic:c1", T0 + timedelta(minutes=5))
    stats.agent("bob").talk("generic:c2", T0 + timedelta(minutes=5))
    stats.agent("alice").talk("generic:c3", T0 + timedelta(minutes=5))
    stats.agent("alice").hang_up("generic:c3", T0 + timedelta(minutes=6))
    assert stats.agents["alice"].state == "wrap_up"
    assert choose_agent(stats, roster(), "sales", SIM_AGENTS) is None
    # Simulated agents take the call nobody else is free for.
    open_page(stats, "sim-amy", 7)
    assert choose_agent(stats, roster(), "sales", SIM_AGENTS) == "sim-amy"


def test_people_first_then_the_longest_available() -> None:
    stats = QueueStats("UTC", now=T0)
    for n, name in enumerate(SIM_AGENTS):
        open_page(stats, name, n)
    open_page(stats, "bob", 10)
    open_page(stats, "alice", 12)
    assert choose_agent(stats, roster(), "sales", SIM_AGENTS) == "bob"
    assert choose_agent(stats, roster(), "sales", SIM_AGENTS, busy={"bob"}) == "alice"
    # Everyone busy but the simulated agents: the one available the longest.
    assert choose_agent(stats, roster(), "sales", SIM_AGENTS, busy={"bob", "alice"}) == "sim-amy"
    assert (
        choose_agent(stats, roster(), "sales", SIM_AGENTS, busy={"sim-amy", "bob", "alice"})
        == "sim-ben"
    )
    # A transfer between simulated agents never picks a person.
    assert choose_agent(stats, roster(), "sales", SIM_AGENTS, people=False) == "sim-amy"


def test_queue_and_role_decide_who_takes_calls() -> None:
    stats = QueueStats("UTC", now=T0)
    open_page(stats, "carol", 1)  # sales only
    open_page(stats, "sam", 2)  # a supervisor without an extension
    assert choose_agent(stats, roster(), "support", SIM_AGENTS) is None
    assert choose_agent(stats, roster(), "sales", SIM_AGENTS) == "carol"
    assert not takes_calls(roster(), "sam", "sales")
    open_page(stats, "sue", 3)  # a supervisor with an extension
    assert takes_calls(roster(), "sue", "support")
    assert choose_agent(stats, roster(), "support", SIM_AGENTS) == "sue"


def test_demo_speed_divides_every_simulated_duration() -> None:
    fast = DemoTiming().faster(10)
    assert fast.between_calls_s == DemoTiming().between_calls_s / 10
    assert fast.talk_s == (0.5, 1.5)
    assert fast.person_talk_max_s == 60


def test_simulated_wrap_ups_grade_the_call_and_offer_the_first_suggestion_allowed() -> None:
    rng = random.Random(5)
    pop = {
        "next_needs": [
            {"sku": "85123A", "may_offer": False},  # no marketing permission: not offered
            {"sku": "22423", "may_offer": True},
        ]
    }
    bodies = [WrapUp.model_validate(sim_wrap_up(rng, "sim-amy", pop)) for _ in range(200)]
    assert {b.satisfaction for b in bodies} == {1, 2, 3, 4, 5}
    assert all(b.satisfaction_kind == "agent" for b in bodies)
    assert {o.sku for b in bodies for o in b.offers} == {"22423"}
    taken = sum(o.outcome == "accepted" for b in bodies for o in b.offers)
    assert 20 < taken < 80, taken  # about one in four of 200
    bare = sim_wrap_up(rng, "sim-amy", None)
    assert "offers" not in bare and WrapUp.model_validate(bare).disposition == "resolved"
