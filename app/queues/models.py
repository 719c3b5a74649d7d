"""Queues, the dialed numbers that reach them, and agents' presence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, utcnow
from telephony.events import AGENT_MAX, CALL_ID_MAX, QUEUE_MAX

POP_MODES = ("offer", "answer", "off")
# A dialed number (DID) as stored, normalised (``queue_numbers.number``).
NUMBER_MAX = 32

# Seconds within which an answer counts for the service level, unless the queue says otherwise.
DEFAULT_SERVICE_LEVEL_S = 20


class Queue(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(QUEUE_MAX), unique=True)
    service_level_s: Mapped[int] = mapped_column(Integer, default=DEFAULT_SERVICE_LEVEL_S)
    # How long an agent may stay in wrap_up after a call of this queue before being available.
    wrap_up_s: Mapped[int] = mapped_column(Integer, default=60, server_default=text("60"))
    # How long an offer rings an agent with no open page before it is withdrawn from them.
    ring_timeout_s: Mapped[int] = mapped_column(Integer, default=30, server_default=text("30"))
    pop_mode: Mapped[str] = mapped_column(String(8), default="offer")
    # [{"code", "label"}] offered in this queue's wrap-up; null: the default list.
    dispositions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class QueueNumber(Base):
    """A dialed number (DID) that reaches a queue."""

    __tablename__ = "queue_numbers"

    number: Mapped[str] = mapped_column(String(NUMBER_MAX), primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))


class AgentPresence(Base):
    """An agent's current state and since when (logged_out, available, away, ringing, ...)."""

    __tablename__ = "agent_presence"

    username: Mapped[str] = mapped_column(String(AGENT_MAX), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="logged_out")
    since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    call_id: Mapped[str | None] = mapped_column(String(CALL_ID_MAX))
