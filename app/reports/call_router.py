"""Reports of the calls (supervisors and admins): ``/api/reports/offers`` and ``satisfaction``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["reports"])
