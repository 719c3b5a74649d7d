"""The agent desk's customer reads: search, and a customer's timeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.customers import search, timeline
from app.deps import SessionDep, SettingsDep
from app.users.deps import CurrentAgent

router = APIRouter(tags=["customers"])


@router.get("/api/customers/search")
async def search_customers(
    session: SessionDep,
    settings: SettingsDep,
    _: CurrentAgent,
    q: Annotated[str, Query(max_length=200)],
    limit: Annotated[int, Query(ge=1, le=search.MAX_RESULTS)] = 20,
) -> dict[str, Any]:
    """Customers by name, phone number (any format), e-mail, customer number or external
    reference, best first. Opening one is ``GET /api/customers/{id}/profile?reason=search``."""
    found = await search.search_customers(
        session, q, default_region=settings.default_region, limit=limit
    )
    return {"query": q.strip(), "customers": found}


@router.get("/api/customers/{customer_id}/timeline")
async def customer_timeline(
    customer_id: int,
    session: SessionDep,
    _: CurrentAgent,
    before: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=timeline.MAX_PAGE)] = 20,
) -> dict[str, Any]:
    """Calls, touch points and orders, newest first; ``before`` is the previous page's
    ``next``."""
    return await timeline.customer_timeline(session, customer_id, before=before, limit=limit)
