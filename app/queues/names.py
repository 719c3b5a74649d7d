"""Queue names: what a queue may be called, and the lane of calls that name no queue."""

from __future__ import annotations

from sqlalchemy import ColumnElement, SQLColumnExpression, func, or_

from app.errors import Invalid
from telephony.events import NUL, QUEUE_MAX

UNROUTED = "unrouted"
"""The lane of calls that name no queue and whose dialed number reaches none: counted, listed
and shown on the wallboard under this name (``screenpop queue add unrouted`` sets its
threshold like any queue's)."""


def lane_of(queue: str | None) -> str:
    """The name a call's figures are kept under: its queue, or ``UNROUTED``."""
    return queue or UNROUTED


def lane_column(queue: SQLColumnExpression[str | None]) -> ColumnElement[str]:
    """SQL: ``lane_of`` a queue column (a null queue is the ``UNROUTED`` lane)."""
    return func.coalesce(queue, UNROUTED)


def in_lanes(queue: SQLColumnExpression[str | None], lanes: frozenset[str]) -> ColumnElement[bool]:
    """SQL: the ``queue`` column is one of ``lanes``, a null queue being the ``UNROUTED``
    lane (a call that names no queue, or a touch point with no call)."""
    named = queue.in_(sorted(lanes))
    return or_(named, queue.is_(None)) if UNROUTED in lanes else named


def check_queue_name(name: str, field: str = "queue name") -> None:
    """Refuse (``Invalid``, naming ``field`` and the limit) a queue name that is empty, longer
    than its column or holds a NUL character: never cut short, never a database error."""
    if not name.strip():
        raise Invalid(f"{field}: must not be empty")
    if len(name) > QUEUE_MAX:
        raise Invalid(
            f"{field}: {name[:16]!r}... is {len(name)} characters long; the limit is {QUEUE_MAX}"
        )
    if NUL in name:
        raise Invalid(f"{field}: contains a NUL character (\\u0000), which cannot be stored")
