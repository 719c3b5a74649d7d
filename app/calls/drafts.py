"""Wrap-up drafts: what the agent has typed so far, kept on the server per call and agent.

A draft is saved as the agent types, during the call and after (the page autosaves), so a
reload or another device finds the notes where they were left. Each agent leg of a call has
its own (``app.calls.legs``): after a transfer, the agent who took the call is shown the
notes of the one who transferred it until they save their own, and the transferring agent
keeps theirs to wrap up their leg. A wrap-up clears its own leg's draft. Calls an agent was
connected to and has not wrapped up stay *pending* for ``PENDING_WRAPUP_HOURS`` after their
leg ended.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import SmallInteger, String, Text, and_, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, aliased, mapped_column

from app.calls import legs
from app.calls.models import Call, CallEventRecord, PopDelivery
from app.calls.planning import Planner
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
    """The wrap-up form of one agent's leg of a call as last saved."""

    __tablename__ = "wrapup_drafts"

    call_id: Mapped[str] = mapped_column(String(CALL_ID_MAX), primary_key=True)
    username: Mapped[str] = mapped_column(String(AGENT_MAX), primary_key=True)
    disposition: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    satisfaction_kind: Mapped[str | None] = mapped_column(String(8))
    offers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
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
        "updated_by": draft.username if draft else None,
        "updated_at": _iso(draft.updated_at) if draft else None,
    }


async def _call_for(session: AsyncSession, planner: Planner, call_id: str, user: Principal) -> Call:
    """The call, if this user may see its wrap-up: its agent, an agent it is offered to, an
    agent who was connected to it before (a transfer), or a supervisor."""
    call = await session.get(Call, call_id)
    if call is None:
        raise NotFound(f"call {call_id!r} not found")
    if (
        user.is_supervisor
        or user.username == call.agent
        or user.username in (call.offered_to or [])
        or await legs.had_leg(session, planner, call_id, user.username, call.agent)
    ):
        return call
    raise Forbidden("only an agent connected to this call or a supervisor may see its wrap-up")


async def wrapped_up(session: AsyncSession, call_id: str, username: str | None) -> bool:
    """Whether ``username`` has wrapped up their leg of the call (None: anyone any leg)."""
    query = select(Interaction.id).where(Interaction.call_id == call_id)
    if username is not None:
        query = query.where(Interaction.agent == username)
    return (await session.execute(query.limit(1))).first() is not None


async def get_draft(
    session: AsyncSession, planner: Planner, call_id: str, user: Principal
) -> dict[str, Any]:
    """The user's draft of the call. With none of their own, the agent the call is with (or
    offered to), and a supervisor, see the notes so far of another leg: the newest draft of
    another agent, or their wrap-up if they already saved it (``updated_by`` names them).
    Empty when there is none; ``wrapped_up``: the user's leg is wrapped up already."""
    call = await _call_for(session, planner, call_id, user)
    done = await wrapped_up(session, call_id, user.username)
    draft = await session.get(WrapupDraft, (call_id, user.username))
    receiving = user.username in (call.agent, *(call.offered_to or []))
    if draft is not None or done or not (receiving or user.is_supervisor):
        return draft_document(call_id, draft, wrapped_up=done)
    return await _notes_so_far(session, call_id, user.username)


async def _notes_so_far(session: AsyncSession, call_id: str, username: str) -> dict[str, Any]:
    """The newest draft or wrap-up of another agent's leg of the call, as a draft."""
    draft = await session.scalar(
        select(WrapupDraft)
        .where(WrapupDraft.call_id == call_id, WrapupDraft.username != username)
        .order_by(WrapupDraft.updated_at.desc())
        .limit(1)
    )
    wrapup = await session.scalar(
        select(Interaction)
        .where(Interaction.call_id == call_id, Interaction.agent != username)
        .order_by(Interaction.created_at.desc())
        .limit(1)
    )
    if wrapup is None or (draft is not None and draft.updated_at >= wrapup.created_at):
        return draft_document(call_id, draft, wrapped_up=False)
    return {
        "call_id": call_id,
        "wrapped_up": False,
        "disposition": wrapup.disposition,
        "notes": wrapup.notes,
        "satisfaction": wrapup.satisfaction,
        "satisfaction_kind": wrapup.satisfaction_kind,
        "offers": list(wrapup.offer_outcomes or []),
        "updated_by": wrapup.agent,
        "updated_at": _iso(wrapup.created_at),
    }


async def save_draft(
    session: AsyncSession, planner: Planner, call_id: str, user: Principal, data: DraftIn
) -> dict[str, Any]:
    """Replace the user's draft of the call with the form as it stands; refused once their
    leg is wrapped up."""
    await _call_for(session, planner, call_id, user)
    if await wrapped_up(session, call_id, user.username):
        raise Conflict(f"call {call_id!r} is already wrapped up")
    draft = await session.get(WrapupDraft, (call_id, user.username))
    if draft is None:
        draft = WrapupDraft(call_id=call_id, username=user.username)
        session.add(draft)
    draft.disposition = data.disposition or None
    draft.notes = data.notes
    draft.satisfaction = data.satisfaction
    draft.satisfaction_kind = data.satisfaction_kind
    draft.offers = [offer.model_dump() for offer in data.offers]
    draft.updated_at = utcnow()
    await session.flush()
    return draft_document(call_id, draft, wrapped_up=False)


async def clear_draft(session: AsyncSession, call_id: str, username: str) -> None:
    """Forget ``username``'s draft of the call (their wrap-up was recorded)."""
    await session.execute(
        delete(WrapupDraft).where(WrapupDraft.call_id == call_id, WrapupDraft.username == username)
    )


async def pending_wrapups(
    session: AsyncSession, planner: Planner, username: str, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Calls this agent was connected to whose leg is over (the call ended, or they
    transferred it) and that they have not wrapped up, newest first; a call stops being
    pending ``PENDING_WRAPUP_HOURS`` after their leg ended."""
    since = (now or utcnow()) - timedelta(hours=PENDING_WRAPUP_HOURS)
    rows = await session.execute(
        select(Call, WrapupDraft, Customer.name)
        .outerjoin(Interaction, and_(Interaction.call_id == Call.id, Interaction.agent == username))
        .outerjoin(
            WrapupDraft, and_(WrapupDraft.call_id == Call.id, WrapupDraft.username == username)
        )
        .outerjoin(Customer, Customer.id == Call.customer_id)
        .where(
            or_(
                and_(
                    Call.agent == username,
                    Call.answered_at.is_not(None),
                    Call.ended_at >= since,
                ),
                and_(Call.last_event_at >= since, _transferred_from_candidate(username)),
            ),
            Interaction.id.is_(None),
        )
        .order_by(func.coalesce(Call.ended_at, Call.last_event_at).desc())
        .limit(50)
    )
    out = []
    for call, draft, name in rows.all():
        ended = call.ended_at
        if call.agent != username:
            ended = await _leg_end(session, planner, call.id, username)
            if ended is None or ended < since:
                continue
        out.append(_pending(call, draft, name, ended))
    return out


def _transferred_from_candidate(username: str) -> Any:
    """A call someone else has now that was transferred and that this agent had a pop or a
    draft of: their leg may be over (``_leg_end`` says)."""
    transferred = exists().where(
        CallEventRecord.call_id == Call.id, CallEventRecord.kind == "transferred"
    )
    pushed = exists().where(PopDelivery.call_id == Call.id, PopDelivery.username == username)
    mine = aliased(WrapupDraft)  # the outer query joins the drafts too
    drafted = exists().where(mine.call_id == Call.id, mine.username == username)
    return and_(
        or_(Call.agent.is_(None), Call.agent != username), transferred, or_(pushed, drafted)
    )


async def _leg_end(
    session: AsyncSession, planner: Planner, call_id: str, username: str
) -> datetime | None:
    """When ``username``'s leg of the call ended (None: they had none)."""
    for leg in await legs.legs_of(session, planner, call_id):
        if leg.username == username and leg.ended_at is not None:
            return leg.ended_at
    return None


def _pending(
    call: Call, draft: WrapupDraft | None, name: str | None, ended: datetime | None
) -> dict[str, Any]:
    return {
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
        "ended_at": _iso(ended),
        "expires_at": _iso(ended + timedelta(hours=PENDING_WRAPUP_HOURS)) if ended else None,
        "draft": draft_document(call.id, draft, wrapped_up=False),
    }
