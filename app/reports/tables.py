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


# Dates a report may name, and the longest period a call report reads (about ten years): a
# range of centuries would have it build a month boundary for each of thousands of months.
EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)
MAX_SPAN_DAYS = 3_660


def check_range(start: date | None, end: date | None) -> None:
    """A 422 naming the date when a day is out of bounds or the range is upside down."""
    for name, day in (("start", start), ("end", end)):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise Invalid(f"{name} ({day}) must be between {EARLIEST} and {LATEST}")
    if start is not None and end is not None and start > end:
        raise Invalid(f"start ({start}) is after end ({end})")


def check_span(first: date, last: date) -> None:
    """A 422 when the days a call report would read, defaults applied, are too many."""
    days = (last - first).days + 1
    if days > MAX_SPAN_DAYS:
        raise Invalid(f"{first} .. {last} is {days} days; a report covers at most {MAX_SPAN_DAYS}")


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
