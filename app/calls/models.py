"""Calls, the raw event journal, and pop delivery receipts.

Column sizes are the limits ``telephony.events`` checks every event against: an event that
does not fit is refused (422) before anything is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, utcnow
from telephony.events import (
    AGENT_MAX,
    CALL_ID_MAX,
    CALLER_E164_MAX,
    CALLER_NAME_MAX,
    CALLER_RAW_MAX,
    CHANNEL_MAX,
    DIALED_MAX,
    EVENT_ID_MAX,
    KIND_MAX,
    QUEUE_MAX,
    SOURCE_MAX,
)

CALL_STATES = ("queued", "ringing", "answered", "held", "ended", "abandoned")


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_state", "state"),
        Index("ix_calls_first_seen_at", "first_seen_at"),
        # An agent's calls today ("today's calls" on the agent page).
        Index("ix_calls_agent_first_seen_at", "agent", "first_seen_at"),
        # A customer's calls, newest first (the customer timeline).
        Index("ix_calls_customer_id_first_seen_at", "customer_id", "first_seen_at"),
    )

    # "<source>:<provider call id>", e.g. "twilio:CA123..."
    id: Mapped[str] = mapped_column(String(CALL_ID_MAX), primary_key=True)
    source: Mapped[str] = mapped_column(String(SOURCE_MAX))
    # "phone", or the contact's channel ("chat", "email", "sms", "social").
    channel: Mapped[str] = mapped_column(
        String(CHANNEL_MAX), default="phone", server_default=text("'phone'")
    )
    state: Mapped[str] = mapped_column(String(16))
    caller_raw: Mapped[str] = mapped_column(String(CALLER_RAW_MAX), default="")
    caller_e164: Mapped[str | None] = mapped_column(String(CALLER_E164_MAX))
    caller_withheld: Mapped[bool] = mapped_column(Boolean, default=False)
    caller_name: Mapped[str | None] = mapped_column(String(CALLER_NAME_MAX))
    dialed: Mapped[str | None] = mapped_column(String(DIALED_MAX))
    queue: Mapped[str | None] = mapped_column(String(QUEUE_MAX))
    agent: Mapped[str | None] = mapped_column(String(AGENT_MAX))
    # Agents the call is being offered to right now (ring-all / overflow).
    offered_to: Mapped[list[str]] = mapped_column(JSONType, default=list)
    customer_id: Mapped[int | None] = mapped_column(Integer)
    match: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The assembled pop document, built at first sight and pushed on offer.
    pop: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    pop_version: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Bumped on every applied event; a versioned update serialises concurrent writers.
    version: Mapped[int] = mapped_column(Integer, default=0)


class CallEventRecord(Base):
    """The journal: every accepted event, raw, written before it is applied."""

    __tablename__ = "call_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        Index("ix_call_events_call_id_id", "call_id", "id"),
        Index("ix_call_events_received_at", "received_at"),
        # Journaled events whose processing failed: few, found fast, replayed at start-up.
        Index(
            "ix_call_events_unapplied",
            "call_id",
            postgresql_where=text("NOT applied"),
            sqlite_where=text("applied = 0"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    call_id: Mapped[str] = mapped_column(String(CALL_ID_MAX))
    source: Mapped[str] = mapped_column(String(SOURCE_MAX))
    event_id: Mapped[str] = mapped_column(String(EVENT_ID_MAX))
    kind: Mapped[str] = mapped_column(String(KIND_MAX))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    event: Mapped[dict[str, Any]] = mapped_column(JSONType)  # the normalised CallEvent
    # What the provider sent; null for screenpop's own events (an expiry).
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    # False when applying the event failed after it was journaled: replay_journal fixes it.
    applied: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class PopDelivery(Base):
    """Delivered and seen receipts for a pop version on an agent's screen."""

    __tablename__ = "pop_deliveries"
    __table_args__ = (Index("ix_pop_deliveries_username", "username"),)

    call_id: Mapped[str] = mapped_column(String(CALL_ID_MAX), primary_key=True)
    username: Mapped[str] = mapped_column(String(AGENT_MAX), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    pushed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    latency_ms: Mapped[float | None] = mapped_column()
