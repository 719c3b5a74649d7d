"""Liveness, readiness (503 with the reason and ``Retry-After`` while the database is
unreachable) and Prometheus metrics."""

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
    return JSONResponse({"status": "ready", "database": "ok"})


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    gauges.sample_local(state)
    return Response(state["metrics"].exposition(), media_type=CONTENT_TYPE_LATEST)
