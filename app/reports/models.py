"""Materialised reports.

The customer-base reports, rewritten by ``screenpop train`` and ``reports refresh``: the API
only sums these few rows (a month and segment per row, a day and value tier per row), so
answering does not depend on how many customers there are.

The call reports' rollup (``call_rollup``): the wrap-ups of each past local day, and of each
whole past month, summed per queue lane and product, agent or grade kind. Past days never
change (a wrap-up is dated when it is recorded), so rows are added, never rewritten.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, Float, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow
from telephony.events import QUEUE_MAX


class RetentionMonth(Base):
    """One month's retention figures for the customers of one segment (docs/reports.md)."""

    __tablename__ = "report_retention_months"

    month: Mapped[date] = mapped_column(Date, primary_key=True)  # the month's first day
    segment: Mapped[str] = mapped_column(String(20), primary_key=True)
    active_start: Mapped[int] = mapped_column(Integer)
    defected: Mapped[int] = mapped_column(Integer)
    new: Mapped[int] = mapped_column(Integer)
    won_back: Mapped[int] = mapped_column(Integer)
    # The last day counted (the newest order's day) and the N of "N usual intervals".
    as_of: Mapped[date] = mapped_column(Date)
    defection_intervals: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ValueDay(Base):
    """The customer base's lifetime value on one day, per value tier (the day's last run wins)."""

    __tablename__ = "report_value_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    value_tier: Mapped[str] = mapped_column(String(10), primary_key=True)
    customers: Mapped[int] = mapped_column(Integer)
    clv_forecast: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    clv_historic: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CallRollup(Base):
    """How far the call reports' rollup has gone: every local day before ``rolled_to`` (in
    ``timezone``, the one the days were cut with) is in the rollup tables."""

    __tablename__ = "report_call_rollups"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    rolled_to: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class _RollupRow:
    """A rollup row: a local ``day``, or the whole month starting on ``day`` (``whole_month``),
    and the queue lane of the wrap-ups summed (``unrouted`` for none; a whole month's rows are
    also kept summed over every lane, ``call_rollup.EVERY_LANE``). Read by day range, and by
    lane and day range for a supervisor's queues."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    whole_month: Mapped[bool] = mapped_column(Boolean)
    lane: Mapped[str] = mapped_column(String(QUEUE_MAX))


class OfferProductRollup(_RollupRow, Base):
    """Offers per lane and product (``sku`` as the wrap-up recorded it)."""

    __tablename__ = "report_offer_products"
    __table_args__ = (
        Index("ix_report_offer_products_span", "whole_month", "day"),
        Index("ix_report_offer_products_lane_span", "whole_month", "lane", "day"),
    )

    sku: Mapped[str] = mapped_column(Text)
    calls: Mapped[int] = mapped_column(Integer)
    offered: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    not_offered: Mapped[int] = mapped_column(Integer)


class OfferAgentRollup(_RollupRow, Base):
    """Offers per lane and agent."""

    __tablename__ = "report_offer_agents"
    __table_args__ = (
        Index("ix_report_offer_agents_span", "whole_month", "day"),
        Index("ix_report_offer_agents_lane_span", "whole_month", "lane", "day"),
    )

    agent: Mapped[str | None] = mapped_column(String(64))
    calls: Mapped[int] = mapped_column(Integer)
    offered: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    not_offered: Mapped[int] = mapped_column(Integer)


class GradeRollup(_RollupRow, Base):
    """Graded wrap-ups per lane, agent and kind of grade (caller or agent)."""

    __tablename__ = "report_grades"
    __table_args__ = (
        Index("ix_report_grades_span", "whole_month", "day"),
        Index("ix_report_grades_lane_span", "whole_month", "lane", "day"),
    )

    agent: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str | None] = mapped_column(String(8))
    graded: Mapped[int] = mapped_column(Integer)
    grade_sum: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[int] = mapped_column(Integer)
    dissatisfied: Mapped[int] = mapped_column(Integer)
