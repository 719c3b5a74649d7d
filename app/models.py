"""Every ORM model, imported once so Alembic and tests see the whole schema."""

from app.calls.drafts import WrapupDraft
from app.calls.models import Call, CallEventRecord, PopDelivery
from app.customers.models import (
    Account,
    Customer,
    CustomerEmail,
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
from app.reports.models import (
    CallRollup,
    GradeRollup,
    OfferAgentRollup,
    OfferProductRollup,
    RetentionMonth,
    ValueDay,
)
from app.sources.models import OutboxMessage, SyncCursor
from app.users.models import User

__all__ = [
    "Account",
    "AgentPresence",
    "Base",
    "Call",
    "CallEventRecord",
    "CallRollup",
    "Customer",
    "CustomerEmail",
    "CustomerInsight",
    "CustomerPhone",
    "CustomerRef",
    "GradeRollup",
    "Interaction",
    "LoyaltyMembership",
    "MatchChoice",
    "NextNeed",
    "OfferAgentRollup",
    "OfferProductRollup",
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
