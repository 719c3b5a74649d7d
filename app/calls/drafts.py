"""Wrap-up drafts: what the agent has typed so far, kept with the call on the server.

A draft is saved as the agent types (the page autosaves), so a reload, another device or the
agent a call is transferred to finds the notes where they were left. The wrap-up itself
clears it. Calls an agent answered and has not wrapped up stay *pending* for
``PENDING_WRAPUP_HOURS`` after they end.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import SmallInteger, String, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.calls.models import Call
from app.calls.pop import caller_of
from app.calls.schemas import OfferOutcome
from app.customers.models import Customer, Interaction
from app.db import Base, JSONType, UTCDateTime, utcnow
from app.errors import Conflict, Forbidden, NotFound
from app.users.service import Principal
from telephony.events import AGENT_MAX, CALL_ID_MAX

PENDING_WRAPUP_HOURS = 12
SatisfactionKind = Literal["caller", "agent"]


class WrapupDraft(Base):
    """The wrap-up form of one call as last saved (one per call, whoever holds it)."""

    __tablename__ = "wrapup_drafts"

    call_id: Mapped[str] = mapped_column(String(CALL_ID_MAX), primary_key=True)
    disposition: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    satisfaction_kind: Mapped[str | None] = mapped_column(String(8))
    offers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    updated_by: Mapped[str] = mapped_column(String(AGENT_MAX))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DraftIn(BaseModel):
    """The wrap-up form as it stands; every field may still be empty."""

    model_config = ConfigDict(extra="forbid")

    disposition: str | None = Field(default=None, max_length=64)
    notes: str | None = Field(default=None, max_length=10_000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    satisfaction_kind: SatisfactionKind | None = None
    offers: list[OfferOutcome] = Field(default_factory=list, max_length=50)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def draft_document(call_id: str, draft: WrapupDraft | None, *, wrapped_up: bool) -> dict[str, Any]:
    """A draft as the API shows it; an empty one when nothing was saved."""
    return {
        "call_id": call_id,
        "wrapped_up": wrapped_up,
        "disposition": draft.disposition if draft else None,
        "notes": draft.notes if draft else None,
        "satisfaction": draft.satisfaction if draft else None,
        "satisfaction_kind": draft.satisfaction_kind if draft else None,
        "offers": list(draft.offers or []) if draft else [],
        "updated_by": draft.updated_by if draft else None,
        "updated_at": _iso(draft.updated_at) if draft else None,
    }


async def _call_for(session: AsyncSession, call_id: str, user: Principal) -> Call:
    """The call, if this user may see its wrap-up: its agent, an agent it is offered to, or a
    supervisor."""
    call = await session.get(Call, call_id)
    if call is None:
        raise NotFound(f"call {call_id!r} not found")
    if (
        user.is_supervisor
        or user.username == call.agent
        or user.username in (call.offered_to or [])
    ):
        return call
    raise Forbidden("only the agent on this call or a supervisor may see its wrap-up")


async def _wrapped_up(session: AsyncSession, call_id: str) -> bool:
    found = await session.execute(select(Interaction.id).where(Interaction.call_id == call_id))
    return found.first() is not None


async def get_draft(session: AsyncSession, call_id: str, user: Principal) -> dict[str, Any]:
    """The call's draft (empty when none), and whether the call is wrapped up already."""
    await _call_for(session, call_id, user)
    draft = await session.get(WrapupDraft, call_id)
    return draft_document(call_id, draft, wrapped_up=await _wrapped_up(session, call_id))


async def save_draft(
    session: AsyncSession, call_id: str, user: Principal, data: DraftIn
) -> dict[str, Any]:
    """Replace the call's draft with the form as it stands; refused once it is wrapped up."""
    await _call_for(session, call_id, user)
    if await _wrapped_up(session, call_id):
        raise Conflict(f"call {call_id!r} is already wrapped up")
    draft = await session.get(WrapupDraft, call_id)
    if draft is None:
        draft = WrapupDraft(call_id=call_id)
        session.add(draft)
    draft.disposition = data.disposition or None
    draft.notes = data.notes
    draft.satisfaction = data.satisfaction
    draft.satisfaction_kind = data.satisfaction_kind
    draft.offers = [offer.model_dump() for offer in data.offers]
    draft.updated_by = user.username
    draft.updated_at = utcnow()
    await session.flush()
    return draft_document(call_id, draft, wrapped_up=False)


async def clear_draft(session: AsyncSession, call_id: str) -> None:
    """Forget the call's draft (its wrap-up was recorded)."""
    await session.execute(delete(WrapupDraft).where(WrapupDraft.call_id == call_id))


async def pending_wrapups(
    session: AsyncSession, username: str, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Calls this agent answered, that have ended and are not wrapped up, newest first; a call
    stops being pending ``PENDING_WRAPUP_HOURS`` after it ended."""
    since = (now or utcnow()) - timedelta(hours=PENDING_WRAPUP_HOURS)
    rows = await session.execute(
        select(Call, WrapupDraft, Customer.name)
        .outerjoin(Interaction, Interaction.call_id == Call.id)
        .outerjoin(WrapupDraft, WrapupDraft.call_id == Call.id)
        .outerjoin(Customer, Customer.id == Call.customer_id)
        .where(
            Call.agent == username,
            Call.answered_at.is_not(None),
            Call.ended_at >= since,
            Interaction.id.is_(None),
        )
        .order_by(Call.ended_at.desc())
        .limit(50)
    )
    return [
        {
            "call_id": call.id,
            "queue": call.queue,
            "caller": caller_of(
                {
                    "caller_raw": call.caller_raw,
                    "caller_e164": call.caller_e164,
                    "caller_withheld": call.caller_withheld,
                }
            ),
            "customer_id": call.customer_id,
            "customer_name": name,
            "answered_at": _iso(call.answered_at),
            "ended_at": _iso(call.ended_at),
            "expires_at": _iso(call.ended_at + timedelta(hours=PENDING_WRAPUP_HOURS))
            if call.ended_at
            else None,
            "draft": draft_document(call.id, draft, wrapped_up=False),
        }
        for call, draft, name in rows.all()
    ]
