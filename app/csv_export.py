"""Tables as CSV for spreadsheets: one header row, empty cells for null, and no formulas.

A text cell that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-`` or
``@``) is written with a leading apostrophe: values such as call ids, queue names and notes come
from outside (a PBX, an agent) and must not execute when a supervisor opens the export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from starlette.responses import Response

MEDIA_TYPE = "text/csv; charset=utf-8"
FORMULA_STARTS = ("=", "+", "-", "@")


def cell(value: Any) -> Any:
    """A CSV cell: empty for null; a text a spreadsheet would run as a formula quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def as_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """``rows`` as CSV with a header row of ``columns`` (other keys are left out)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in columns])
    return out.getvalue()


def csv_response(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Response:
    """An HTTP answer with the table as CSV."""
    return Response(as_csv(columns, rows), media_type=MEDIA_TYPE)
