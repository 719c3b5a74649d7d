"""Materialised customer-base reports, rewritten by ``screenpop train`` and ``reports refresh``.

The API only sums these few rows (a month and segment per row, a day and value tier per row),
so answering does not depend on how many customers there are.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, Float, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


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
