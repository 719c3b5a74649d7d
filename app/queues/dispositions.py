"""Wrap-up dispositions, configured per queue (``screenpop queue add … --dispositions``).

A queue without its own list offers ``DEFAULT_DISPOSITIONS``. A wrap-up's disposition must be
one of its call's queue's codes.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid
from app.queues.models import Queue

DEFAULT_DISPOSITIONS: tuple[tuple[str, str], ...] = (
    ("resolved", "Resolved"),
    ("sale", "Sale made"),
    ("follow_up", "Follow-up needed"),
    ("complaint", "Complaint"),
    ("information", "Information given"),
    ("wrong_number", "Wrong number"),
)
_CODE = re.compile(r"^[a-z0-9_]{1,64}$")


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:64]


def parse_dispositions(text: str) -> list[dict[str, str]]:
    """``"sale=Sale made,Callback booked"`` -> ``[{"code": "sale", "label": "Sale made"},
    {"code": "callback_booked", "label": "Callback booked"}]``; a clear error when an entry
    is empty, a code is malformed or repeated."""
    out: list[dict[str, str]] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        code, _, label = entry.partition("=") if "=" in entry else (_slug(entry), "", entry)
        code, label = code.strip(), label.strip()
        if not label:
            raise Invalid(f"disposition {entry!r} has no label (write code=Label or Label)")
        if not _CODE.match(code):
            raise Invalid(
                f"disposition code {code!r} must be lower-case letters, digits or _ (1-64)"
            )
        if any(d["code"] == code for d in out):
            raise Invalid(f"disposition code {code!r} is given twice")
        if len(label) > 80:
            raise Invalid(f"disposition label {label!r} is longer than 80 characters")
        out.append({"code": code, "label": label})
    if not out:
        raise Invalid("give at least one disposition")
    return out


def defaults() -> list[dict[str, str]]:
    return [{"code": code, "label": label} for code, label in DEFAULT_DISPOSITIONS]


async def set_dispositions(
    session: AsyncSession, queue_name: str, dispositions: list[dict[str, str]] | None
) -> None:
    """Store a queue's list (``None``: back to the defaults)."""
    queue = (
        await session.execute(select(Queue).where(Queue.name == queue_name))
    ).scalar_one_or_none()
    if queue is None:
        raise Invalid(f"queue {queue_name!r} does not exist")
    queue.dispositions = dispositions
    await session.flush()


async def dispositions_by_queue(session: AsyncSession) -> dict[str, Any]:
    """``{"default": [...], "queues": {name: [...]}}`` for every queue."""
    rows = await session.execute(select(Queue.name, Queue.dispositions).order_by(Queue.name))
    return {
        "default": defaults(),
        "queues": {name: list(own) if own else defaults() for name, own in rows.all()},
    }


async def for_queue(session: AsyncSession, queue_name: str | None) -> list[dict[str, str]]:
    """The dispositions a call in this queue may be wrapped up with."""
    if queue_name:
        own = (
            await session.execute(select(Queue.dispositions).where(Queue.name == queue_name))
        ).scalar_one_or_none()
        if own:
            return list(own)
    return defaults()


async def check_disposition(session: AsyncSession, queue_name: str | None, code: str) -> None:
    """Refuse (422, naming the allowed codes) a disposition the call's queue does not offer."""
    allowed = await for_queue(session, queue_name)
    if code not in {d["code"] for d in allowed}:
        codes = ", ".join(d["code"] for d in allowed)
        where = f"queue {queue_name!r}" if queue_name else "calls without a queue"
        raise Invalid(f"disposition {code!r} is not one of {where}: {codes}")
