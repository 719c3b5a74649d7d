"""Every ORM model, imported once so Alembic and tests see the whole schema."""

from app.calls.drafts import WrapupDraft
from app.calls.models import Call, CallEventRecord, PopDelivery
from app.customers.models import (
    Account,
    Customer,
    CustomerPhone,
    CustomerRef,
    Interaction,
    LoyaltyMembership,
    MatchChoice,
    Order,
    OrderLine,
    Product,
    ProfileView,
)
from app.db import Base
from app.insights.models import CustomerInsight, NextNeed
from app.queues.models import AgentPresence, Queue, QueueNumber
from app.reports.models import RetentionMonth, ValueDay
from app.sources.models import OutboxMessage, SyncCursor
from app.users.models import User

__all__ = [
    "Account",
    "AgentPresence",
    "Base",
    "Call",
    "CallEventRecord",
    "Customer",
    "CustomerInsight",
    "CustomerPhone",
    "CustomerRef",
    "Interaction",
    "LoyaltyMembership",
    "MatchChoice",
    "NextNeed",
    "Order",
    "OrderLine",
    "OutboxMessage",
    "PopDelivery",
    "Product",
    "ProfileView",
    "Queue",
    "QueueNumber",
    "RetentionMonth",
    "SyncCursor",
    "User",
    "ValueDay",
    "WrapupDraft",
]
