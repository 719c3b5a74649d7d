"""Reports of the customer base (supervisors and admins): ``/api/reports/retention``, ``value``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["reports"])
