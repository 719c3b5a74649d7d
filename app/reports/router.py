"""``/api/reports/...``: one router for the reports of the customer base and of the calls."""

from __future__ import annotations

from fastapi import APIRouter

from app.reports import call_router, customer_router

router = APIRouter()
router.include_router(customer_router.router)
router.include_router(call_router.router)
