"""Request bodies of the call API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from telephony.events import NUL

INT32_MAX = 2**31 - 1


def _one_outcome_per_product(offers: list[OfferOutcome]) -> list[OfferOutcome]:
    seen: set[str] = set()
    for offer in offers:
        if offer.sku in seen:
            raise ValueError(f"{offer.sku!r} is listed twice: one outcome per product")
        seen.add(offer.sku)
    return offers


def _no_nul(value: str) -> str:
    if NUL in value:
        raise ValueError("must not contain a NUL character (\\u0000)")
    return value


StoredText = Annotated[str, AfterValidator(_no_nul)]
"""Text that is stored: PostgreSQL cannot hold a NUL character, so it is a 422."""


class OfferOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: StoredText = Field(min_length=1, max_length=32)
    outcome: Literal["accepted", "declined", "not_offered"]


class WrapUp(BaseModel):
    """After the call: disposition, notes, satisfaction (1 very disappointed .. 5 very
    satisfied) and, per suggested product, whether it was offered and taken."""

    model_config = ConfigDict(extra="forbid")

    disposition: StoredText = Field(min_length=1, max_length=64)
    notes: StoredText | None = Field(default=None, max_length=10_000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    # Whose grade: the caller's own rating, or the agent's impression (the default).
    satisfaction_kind: Literal["caller", "agent"] | None = None
    # One outcome per product (the offers report counts a product's offers as its calls).
    offers: Annotated[list[OfferOutcome], AfterValidator(_one_outcome_per_product)] = Field(
        default_factory=list, max_length=50
    )


class MatchChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int = Field(gt=0, le=INT32_MAX)
