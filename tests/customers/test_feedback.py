"""app.customers.feedback: the suppression window, the grades and the recovery treatment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.customers.feedback import apply_feedback

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def touch(days_ago: int, grade: int | None, declined: str | None = None) -> dict[str, Any]:
    outcomes = [{"sku": declined, "outcome": "declined"}] if declined else []
    return {
        "created_at": (NOW - timedelta(days=days_ago)).isoformat(),
        "satisfaction": grade,
        "offer_outcomes": outcomes,
    }


def doc(*touches: dict[str, Any]) -> dict[str, Any]:
    return {
        "interactions": list(touches),
        "next_needs": [{"sku": s} for s in ("A", "B", "C")],
        "insights": {"treatment": "Standard service: offer the top next need."},
        "treatment": "Standard service: offer the top next need.",
    }


def test_only_declines_inside_the_window_are_left_out() -> None:
    d = doc(touch(1, 4, "A"), touch(89, None, "B"), touch(91, 5, "C"))
    apply_feedback(d, NOW, 90)
    assert [n["sku"] for n in d["next_needs"]] == ["C"]
    assert d["insights"]["satisfaction"] == {"last": 4, "average": 4.5, "count": 2}
    assert d["treatment"].startswith("Standard")


def test_a_newest_grade_of_two_turns_the_treatment_to_recovery_and_three_does_not() -> None:
    low = doc(touch(0, 2), touch(5, 5))
    apply_feedback(low, NOW, 90)
    assert low["treatment"].startswith("Recovery") and "grade 2" in low["treatment"]
    fine = doc(touch(0, 3), touch(5, 1))
    apply_feedback(fine, NOW, 90)
    assert fine["treatment"].startswith("Standard")


def test_no_grades_leave_insights_alone() -> None:
    d = doc(touch(0, None))
    apply_feedback(d, NOW, 90)
    assert "satisfaction" not in d["insights"] and len(d["next_needs"]) == 3
