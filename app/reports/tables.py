"""A report's answer: the table as JSON (with what it covers) or as CSV."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Literal

import orjson
from fastapi import Query
from starlette.responses import Response

from app import csv_export
from app.errors import Invalid

ReportFormat = Literal["json", "csv"]
FormatQuery = Annotated[ReportFormat, Query(description="json (default) or csv")]
StartQuery = Annotated[date | None, Query(description="first day covered (ISO date)")]
EndQuery = Annotated[date | None, Query(description="last day covered (ISO date, inclusive)")]


def check_range(start: date | None, end: date | None) -> None:
    """A 422 when the range is upside down."""
    if start is not None and end is not None and start > end:
        raise Invalid(f"start ({start}) is after end ({end})")


def answer(
    report: str,
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
    format: ReportFormat,
    **about: Any,
) -> Response:
    """The report as ``{"report", "columns", "rows", **about}``, or the rows as CSV.

    Columns named ``*_rate`` or ``*_share`` hold shares from 0 to 1 (the page draws percents).
    The JSON is an encoded response: FastAPI's own encoding of a returned dict walks every cell
    in Python, several times the cost of the report's query for a table of thousands of rows.
    """
    if format == "csv":
        return csv_export.csv_response(columns, rows)
    document = {"report": report, **about, "columns": list(columns), "rows": list(rows)}
    return Response(orjson.dumps(document), media_type="application/json")
