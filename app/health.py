"""Liveness, readiness and Prometheus metrics.

``/readyz`` answers 503 with the reason and ``Retry-After`` while the database is unreachable
(nothing can be served). While Redis is unreachable it answers 200 ``degraded`` with the
reason: the instance still journals every event and pops its own websockets (the others
replay when Redis is back), and Redis is shared, so a 503 there would take every instance
out of a balancer at once.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from app import gauges
from app.deps import StateDep
from app.errors import Unavailable
from app.outage import OUTAGE

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    try:
        async with state["engine"].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:200]
        OUTAGE.begin(detail, state["engine"])
        return JSONResponse(
            {"status": "unavailable", "error": "database_unavailable", "detail": detail},
            status_code=503,
            headers={"retry-after": str(Unavailable.retry_after)},
        )
    OUTAGE.end()
    body: dict[str, str] = {"status": "ready", "database": "ok"}
    if state["settings"].redis_url:
        down = state["hub"].down_reason
        body["redis"] = "ok" if down is None else "unreachable"
        if down is not None:
            body.update(status="degraded", detail=down)
    return JSONResponse(body)


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    gauges.sample_local(state)
    return Response(state["metrics"].exposition(), media_type=CONTENT_TYPE_LATEST)
