"""Request and response bodies of the customers API."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.calls.schemas import StoredText

# Deliberately loose: a plausible address, not RFC 5322 (agents type these while on the phone).
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

CustomerType = Literal["consumer", "industrial", "institutional", "government"]


class CustomerCreate(BaseModel):
    """Quick-create for an unknown caller: a name, and usually the number they call from."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: StoredText = Field(min_length=1, max_length=200)
    phone: StoredText | None = Field(default=None, max_length=64)
    customer_type: CustomerType = "consumer"
    email: StoredText | None = Field(default=None, max_length=200)
    marketing_consent: bool = False
    language: StoredText = Field(default="en", min_length=2, max_length=8)
    country: StoredText | None = Field(default=None, max_length=64)
    # True: the phone is shared on purpose (a household, a switchboard); create even though it
    # already reaches customers (otherwise 409 naming them).
    shared_phone: bool = False

    @field_validator("email")
    @classmethod
    def _plausible_email(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not _EMAIL.match(value):
            raise ValueError("not an e-mail address")
        return value

    @field_validator("phone", "country")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


class CustomerCreated(BaseModel):
    id: int
    name: str
    phone: str | None


class PhoneOwner(BaseModel):
    id: int
    name: str
    external_ref: str | None


class PhoneTaken(BaseModel):
    """The 409 of a quick-create whose phone already reaches customers: who they are."""

    error: str
    detail: str
    customers: list[PhoneOwner]


class CustomerCandidate(BaseModel):
    """One customer found by number or reference (the chooser's row)."""

    id: int
    name: str
    external_ref: str | None
    customer_type: str
    last_order_at: str | None
    last_contact_at: str | None
    chosen_before: bool
    score: float


class CustomerSearch(BaseModel):
    customers: list[CustomerCandidate]
    match: dict[str, Any]
