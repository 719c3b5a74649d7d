"""The pure call state machine: order, duplicates, ring-all, transfers, convergence."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from app.calls.state_machine import CallFacts, Step, apply, fold

T0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_happy_path_queued_offered_answered_ended() -> None:
    facts = fold(
        [
            Step("queued", at(0)),
            Step("offered", at(1), agent="alice"),
            Step("answered", at(3), agent="alice"),
            Step("ended", at(60)),
        ]
    )
    assert facts.state == "ended"
    assert facts.agent == "alice"
    assert facts.queued_at == at(0) and facts.answered_at == at(3) and facts.ended_at == at(60)
    assert facts.offered_to == ()


def test_ended_without_answer_is_abandoned() -> None:
    facts = fold([Step("queued", at(0)), Step("offered", at(1), agent="bob"), Step("ended", at(9))])
    assert facts.state == "abandoned"
    assert facts.answered_at is None


def test_answered_before_offered_answers_and_ignores_the_late_offer() -> None:
    out = apply(CallFacts(), Step("answered", at(3), agent="alice"))
    assert out.facts.state == "answered" and out.answered_by == "alice"
    late = apply(out.facts, Step("offered", at(1), agent="alice"))
    assert late.facts.state == "answered" and late.offered == ()


def test_ended_before_answered_converges_to_ended() -> None:
    facts = fold([Step("ended", at(60)), Step("answered", at(3), agent="alice")])
    assert facts.state == "ended"
    assert facts.agent == "alice" and facts.answered_at == at(3)


def test_late_events_after_a_final_state_do_not_resurrect_the_call() -> None:
    final = fold([Step("queued", at(0)), Step("abandoned", at(5))])
    for step in (
        Step("offered", at(6), agent="bob"),
        Step("queued", at(7)),
        Step("held", at(8)),
        Step("answered", at(9), agent="bob"),  # after the end: not part of this call
        Step("transferred", at(10), transfer_to="bob"),
    ):
        assert apply(final, step).facts.state == "abandoned"


def test_ring_all_accumulates_and_answer_withdraws_the_others() -> None:
    facts = fold(
        [
            Step("queued", at(0)),
            Step("offered", at(1), agent="alice"),
            Step("offered", at(1), agent="bob"),
            Step("offered", at(1), agent="carol"),
        ]
    )
    assert facts.offered_to == ("alice", "bob", "carol") and facts.state == "ringing"
    out = apply(facts, Step("answered", at(4), agent="bob"))
    assert out.facts.agent == "bob" and out.facts.offered_to == ()
    assert set(out.withdrawn) == {"alice", "carol"}


def test_offer_withdrawn_removes_one_agent_and_requeues_when_none_left() -> None:
    facts = fold([Step("offered", at(1), agent="alice"), Step("offered", at(1), agent="bob")])
    one = apply(facts, Step("queued", at(5), agent="alice", withdrawn=True))
    assert one.facts.offered_to == ("bob",) and one.facts.state == "ringing"
    assert one.withdrawn == ("alice",)
    two = apply(one.facts, Step("queued", at(6), agent="bob", withdrawn=True))
    assert two.facts.state == "queued" and two.facts.offered_to == ()


def test_rang_out_withdraws_the_agents_offer_like_an_unanswered() -> None:
    facts = fold([Step("offered", at(1), agent="alice"), Step("offered", at(1), agent="bob")])
    one = apply(facts, Step("rang_out", at(31), agent="alice"))
    assert one.facts.offered_to == ("bob",) and one.facts.state == "ringing"
    assert one.withdrawn == ("alice",)
    two = apply(one.facts, Step("rang_out", at(32), agent="bob"))
    assert two.facts.state == "queued" and two.withdrawn == ("bob",)
    late = apply(
        fold([Step("answered", at(2), agent="alice")]), Step("rang_out", at(40), agent="alice")
    )
    assert late.facts.state == "answered" and late.withdrawn == ()


def test_duplicate_offer_is_not_a_new_offer() -> None:
    facts = fold([Step("offered", at(1), agent="alice")])
    again = apply(facts, Step("offered", at(1), agent="alice"))
    assert again.offered == () and again.facts.offered_to == ("alice",)


def test_transfer_of_a_connected_call_moves_it_to_the_new_agent() -> None:
    facts = fold([Step("offered", at(1), agent="alice"), Step("answered", at(2), agent="alice")])
    out = apply(facts, Step("transferred", at(30), agent="alice", transfer_to="bob"))
    assert out.facts.state == "answered" and out.facts.agent == "bob"
    assert out.transferred_from == "alice" and out.transferred_to == "bob"
    assert out.withdrawn == ("alice",) and out.answered_by == "bob"
    assert out.facts.answered_at == at(2)  # the caller's answer time is kept


def test_transfer_while_ringing_offers_to_the_new_agent() -> None:
    facts = fold([Step("offered", at(1), agent="alice")])
    out = apply(facts, Step("transferred", at(3), transfer_to="bob"))
    assert out.facts.state == "ringing" and out.facts.offered_to == ("bob",)
    assert out.offered == ("bob",) and out.withdrawn == ("alice",)


def test_hold_and_resume_reordered_keep_the_newer_state() -> None:
    base = fold([Step("answered", at(1), agent="alice")])
    in_order = fold([Step("held", at(5)), Step("resumed", at(9))], base)
    reordered = fold([Step("resumed", at(9)), Step("held", at(5))], base)
    assert in_order.state == reordered.state == "answered"


def test_held_before_answered_implies_answered() -> None:
    facts = fold([Step("offered", at(1), agent="alice"), Step("held", at(5))])
    assert facts.state == "held" and facts.agent == "alice"
    assert fold([Step("ended", at(9))], facts).state == "ended"


def test_abandoned_after_answer_is_an_ended_call() -> None:
    facts = fold([Step("answered", at(1), agent="alice"), Step("abandoned", at(9))])
    assert facts.state == "ended"


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        apply(CallFacts(), Step("exploded", at(0)))


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_arrival_order_of_a_normal_call_converges(order: tuple[int, ...]) -> None:
    steps = [
        Step("queued", at(0)),
        Step("offered", at(1), agent="alice"),
        Step("answered", at(3), agent="alice"),
        Step("ended", at(60)),
    ]
    facts = fold([steps[i] for i in order])
    assert facts.state == "ended"
    assert facts.agent == "alice"
    assert facts.answered_at == at(3) and facts.ended_at == at(60)
    assert facts.offered_to == ()
    assert facts.queued_at == at(0)
