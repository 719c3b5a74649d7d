"""Customers and what we know of them: phones, accounts, orders, touch points."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, utcnow
from telephony.events import QUEUE_MAX

CUSTOMER_TYPES = ("consumer", "industrial", "institutional", "government")


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    customer_type: Mapped[str] = mapped_column(String(20), default="consumer")
    language: Mapped[str] = mapped_column(String(8), default="en")
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    country: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(200))
    # Further addresses beyond ``email`` (the first), in the order the source gave them.
    emails: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default=text("'[]'"))
    account_manager: Mapped[str | None] = mapped_column(String(64))
    # Free attributes from a source or an import mapping (shown in the profile as given).
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONType, default=dict, server_default=text("'{}'")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CustomerRef(Base):
    """A customer's reference in one system of record (``source``): the key sync upserts by
    and the ``:ref`` live queries are asked with."""

    __tablename__ = "customer_refs"
    __table_args__ = (Index("ix_customer_refs_customer_id", "customer_id"),)

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    ref: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CustomerEmail(Base):
    """A further address of a customer (``customers.emails``), lower-case, for matching a
    contact by e-mail: the first address is matched through ``customers.email`` itself."""

    __tablename__ = "customer_emails"
    __table_args__ = (Index("ix_customer_emails_email", "email"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(200), primary_key=True)


class CustomerPhone(Base):
    """A number a customer calls from. One number may belong to several customers."""

    __tablename__ = "customer_phones"
    __table_args__ = (
        UniqueConstraint("customer_id", "e164"),
        Index("ix_customer_phones_e164", "e164"),
        Index("ix_customer_phones_last_digits", "last_digits"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    raw: Mapped[str] = mapped_column(String(64))
    e164: Mapped[str | None] = mapped_column(String(20))
    # The last digits of the number, for matching badly formatted stored numbers.
    last_digits: Mapped[str | None] = mapped_column(String(12))
    # "main", or the source (system of record, import) that gave the number.
    label: Mapped[str] = mapped_column(String(64), default="main")


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), unique=True
    )
    balance: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    credit_limit: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="GBP")
    status: Mapped[str] = mapped_column(String(20), default="active")
    # Set when a billing system gave the balance (sync or import): then the importer's
    # invoice-derived balance leaves this account alone.
    overdue: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    balance_as_of: Mapped[datetime | None] = mapped_column(UTCDateTime())
    balance_source: Mapped[str | None] = mapped_column(String(64))


class LoyaltyMembership(Base):
    """A customer's loyalty programme membership as a system of record gives it (import,
    sync): one per customer, the latest record wins. Without one, the profile shows the
    frequency programme ``screenpop train`` computes from purchases (app/insights/loyalty.py)."""

    __tablename__ = "loyalty_memberships"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    programme: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str | None] = mapped_column(String(32))
    points: Mapped[int | None] = mapped_column(Integer)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The system of record the membership came from, and how fresh it was there.
    source: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Product(Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Order(Base):
    """An invoice. A cancellation/return invoice (``C...``) is kept with ``is_return``."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_customer_id_ordered_at", "customer_id", "ordered_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    invoice_no: Mapped[str] = mapped_column(String(32), unique=True)
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    is_return: Mapped[bool] = mapped_column(Boolean, default=False)
    total: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    country: Mapped[str | None] = mapped_column(String(64))
    # The system of record the order was synced or imported from (None: the retail import).
    source: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str | None] = mapped_column(String(32))


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "line_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 3))


class Interaction(Base):
    """A touch point: a call's wrap-up, an email, a visit. A call has one per agent leg (the
    agent who transferred it and the one who took it each wrap up their part)."""

    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_customer_id_created_at", "customer_id", "created_at"),
        # The call reports (app/reports) read a range of wrap-ups by when they were recorded.
        Index("ix_interactions_created_at", "created_at"),
        UniqueConstraint("call_id", "agent"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20), default="phone")
    call_id: Mapped[str | None] = mapped_column(String(200))
    agent: Mapped[str | None] = mapped_column(String(64))
    # The call's queue when it was wrapped up (null: unrouted, or no call): the call reports
    # read it here, so they never join ``calls`` and a purged call keeps its queue.
    queue: Mapped[str | None] = mapped_column(String(QUEUE_MAX))
    disposition: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    # Whose grade: "caller" (the caller's own rating) or "agent" (the agent's impression).
    satisfaction_kind: Mapped[str | None] = mapped_column(String(8))
    # [{"sku": "...", "outcome": "accepted|declined|not_offered"}]
    offer_outcomes: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MatchChoice(Base):
    """The customer an agent chose for a number shared by several: ranked first next time."""

    __tablename__ = "match_choices"

    e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    chosen_by: Mapped[str | None] = mapped_column(String(64))
    chosen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProfileView(Base):
    """Audit: who saw which customer's profile, when, and why (which call)."""

    __tablename__ = "profile_views"
    __table_args__ = (Index("ix_profile_views_customer_id_viewed_at", "customer_id", "viewed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    call_id: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(32), default="pop")
    viewed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
