"""Request bodies of the call API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OfferOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=32)
    outcome: Literal["accepted", "declined", "not_offered"]


class WrapUp(BaseModel):
    """After the call: disposition, notes, satisfaction (1 very disappointed .. 5 very
    satisfied) and, per suggested product, whether it was offered and taken."""

    model_config = ConfigDict(extra="forbid")

    disposition: str = Field(min_length=1, max_length=64)
    notes: str | None = Field(default=None, max_length=10_000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    # Whose grade: the caller's own rating, or the agent's impression (the default).
    satisfaction_kind: Literal["caller", "agent"] | None = None
    offers: list[OfferOutcome] = Field(default_factory=list, max_length=50)


class MatchChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int = Field(gt=0)
