"""Precomputed insights and next needs, written in bulk by ``screenpop train``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, utcnow


class CustomerInsight(Base):
    __tablename__ = "customer_insights"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    clv_historic: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    clv_forecast: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    value_tier: Mapped[str] = mapped_column(String(10))
    potential: Mapped[bool] = mapped_column(Boolean, default=False)
    segment: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(20))
    churn_risk: Mapped[float] = mapped_column(Float, default=0.0)
    satisfaction_trend: Mapped[str | None] = mapped_column(String(20))
    treatment: Mapped[str | None] = mapped_column(Text)
    # Everything else an agent might want in a glance (frequency, recency, AOV, ...).
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NextNeed(Base):
    __tablename__ = "next_needs"
    __table_args__ = (Index("ix_next_needs_customer_id_rank", "customer_id", "rank"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # reorder | cross_sell
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(300))
    # False when the customer gave no marketing permission: show, but do not offer.
    may_offer: Mapped[bool] = mapped_column(Boolean, default=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InsightRun(Base):
    """One `screenpop train` run: what it covered and the fitted state a `--since` run reuses."""

    __tablename__ = "insight_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # full | since
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    customers: Mapped[int] = mapped_column(Integer, default=0)
    next_needs: Mapped[int] = mapped_column(Integer, default=0)
    # Ranker weights and population thresholds (tier cut-offs, medians), for --since runs.
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
