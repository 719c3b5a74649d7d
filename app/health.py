"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from app import gauges
from app.deps import StateDep

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
        return JSONResponse(
            {"status": "unavailable", "error": "database_unavailable", "detail": str(exc)[:200]},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "database": "ok"})


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    gauges.sample_local(state)
    return Response(state["metrics"].exposition(), media_type=CONTENT_TYPE_LATEST)
