"""Reports of the calls (supervisors and admins): ``/api/reports/offers`` and ``satisfaction``.

A supervisor sees the wrap-ups of their queues' calls and of the ``unrouted`` lane (the same
scope as ``GET /api/queues/history``); an admin sees every one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.deps import SessionDep, StateDep
from app.queues import service as queues
from app.reports import call_reports as reports
from app.reports import call_rollup as rollup
from app.reports import tables
from app.state import State
from app.users.deps import CurrentSupervisor

router = APIRouter(tags=["reports"])


async def _prepare(
    state: State, session: AsyncSession, start: date | None, end: date | None
) -> tuple[reports.Period, date | None]:
    """The period asked for (a 422 if upside down or too long), after rolling up the days ended
    since the last request: and the first local day not rolled up."""
    tables.check_range(start, end)
    timezone = state["settings"].timezone
    now = datetime.now(UTC)
    period = reports.Period.of(start, end, timezone, now)
    tables.check_span(period.start, period.end)
    await rollup.ensure_rolled_up(state["engine"], timezone, now)
    return period, await rollup.rolled_to(session, timezone)


@router.get("/api/reports/offers", response_model=None)
async def offers(
    principal: CurrentSupervisor,
    state: StateDep,
    session: SessionDep,
    by: Annotated[reports.OfferBy, Query(description="product (default) or agent")] = "product",
    start: tables.StartQuery = None,
    end: tables.EndQuery = None,
    format: tables.FormatQuery = "json",
) -> Response:
    """Offers made in calls, per product or per agent: ``offered`` (accepted + declined),
    ``accepted``, ``conversion_rate`` (accepted / offered), ``calls`` (wrap-ups with an offer
    made) and, apart, ``not_offered``. Default range: the last twelve months."""
    period, rolled_to = await _prepare(state, session, start, end)
    scope = await queues.scope_for(session, principal)
    rows = await reports.offers_report(session, period, by, scope.queues, rolled_to)
    return tables.answer("offers", reports.OFFER_COLUMNS[by], rows, format, by=by, **period.about())


@router.get("/api/reports/satisfaction", response_model=None)
async def satisfaction(
    principal: CurrentSupervisor,
    state: StateDep,
    session: SessionDep,
    by: Annotated[reports.SatisfactionBy, Query(description="queue (default) or agent")] = "queue",
    kind: Annotated[
        reports.SatisfactionKind | None,
        Query(description="only the callers' own grades (caller) or the agents' (agent)"),
    ] = None,
    start: tables.StartQuery = None,
    end: tables.EndQuery = None,
    format: tables.FormatQuery = "json",
) -> Response:
    """Satisfaction per local month and per queue or agent: ``graded``, ``average`` (1..5),
    ``satisfied_share`` (4-5), ``dissatisfied_share`` (1-2) and ``change`` of the average
    against the previous month. Default range: the last twelve months."""
    period, rolled_to = await _prepare(state, session, start, end)
    scope = await queues.scope_for(session, principal)
    rows = await reports.satisfaction_report(session, period, by, scope.queues, kind, rolled_to)
    columns = reports.SATISFACTION_COLUMNS[by]
    return tables.answer("satisfaction", columns, rows, format, by=by, kind=kind, **period.about())
