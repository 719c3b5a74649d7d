"""Agents' feedback in the profile at once, without waiting for ``screenpop train``.

Read from the customer's recent touch points (the profile's ``interactions``: the last 10,
newest first, already in the profile's one query, so the pop costs no extra round trip):

* ``next_needs`` leaves out every SKU the customer declined within
  ``SCREENPOP_DECLINE_SUPPRESS_DAYS`` (older touch points are covered by ``train``, which
  applies the same rule to the whole history);
* ``insights.satisfaction`` is ``{"last", "average", "count"}`` over the graded touch points
  among them (``last`` the newest grade);
* a newest grade of 1 or 2 makes the suggested ``treatment`` a recovery one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

# SCREENPOP_DECLINE_SUPPRESS_DAYS's default, for callers without settings at hand.
DECLINE_SUPPRESS_DAYS = 90
RECOVERY = (
    "Recovery: the last contact left this customer unhappy (grade {grade} of 5); acknowledge "
    "it, put it right first, and make no offers on this call."
)


def declined_skus(interactions: list[dict[str, Any]], now: datetime, days: int) -> set[str]:
    """SKUs declined in a touch point newer than ``days`` ago."""
    cutoff = now - timedelta(days=days)
    declined: set[str] = set()
    for touch in interactions:
        created = touch.get("created_at")
        if created is None or datetime.fromisoformat(created) < cutoff:
            continue
        for outcome in touch.get("offer_outcomes") or ():
            if isinstance(outcome, dict) and outcome.get("outcome") == "declined":
                declined.add(str(outcome.get("sku")))
    return declined


def satisfaction(interactions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """``{"last", "average", "count"}`` of the graded touch points (newest first); None if none."""
    grades = [t["satisfaction"] for t in interactions if t.get("satisfaction") is not None]
    if not grades:
        return None
    return {
        "last": grades[0],
        "average": round(sum(grades) / len(grades), 2),
        "count": len(grades),
    }


def apply_feedback(doc: dict[str, Any], now: datetime, decline_suppress_days: int) -> None:
    """Fold the touch points of a profile document into its next needs, insights, treatment."""
    interactions = doc.get("interactions") or []
    declined = declined_skus(interactions, now, decline_suppress_days)
    if declined:
        doc["next_needs"] = [n for n in doc["next_needs"] if n["sku"] not in declined]
    graded = satisfaction(interactions)
    if graded is None:
        return
    if doc.get("insights") is not None:
        doc["insights"]["satisfaction"] = graded
    if graded["last"] <= 2:
        doc["treatment"] = RECOVERY.format(grade=graded["last"])
        if doc.get("insights") is not None:
            doc["insights"]["treatment"] = doc["treatment"]
