"""Reports of the customer base (supervisors and admins): ``/api/reports/retention``, ``value``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from app.deps import SessionDep
from app.reports import customer_tables
from app.reports.tables import EndQuery, FormatQuery, StartQuery, answer, check_range
from app.users.deps import CurrentSupervisor

router = APIRouter(tags=["reports"])
ByQuery = Annotated[customer_tables.By, Query(description="month (default) or segment")]


@router.get("/api/reports/retention", response_model=None)
async def get_retention(
    principal: CurrentSupervisor,
    session: SessionDep,
    by: ByQuery = "month",
    start: StartQuery = None,
    end: EndQuery = None,
    format: FormatQuery = "json",
) -> dict[str, Any] | Response:
    """Retention and defection by month or by segment (rules: docs/reports.md)."""
    check_range(start, end)
    table = await customer_tables.retention_table(session, by, start, end)
    return answer("retention", table.columns, table.rows, format, by=by, **table.about)


@router.get("/api/reports/value", response_model=None)
async def get_value(
    principal: CurrentSupervisor,
    session: SessionDep,
    start: StartQuery = None,
    end: EndQuery = None,
    format: FormatQuery = "json",
) -> dict[str, Any] | Response:
    """The customer base's forecast and historic lifetime value, per day and value tier."""
    check_range(start, end)
    table = await customer_tables.value_table(session, start, end)
    return answer("value", table.columns, table.rows, format, **table.about)
