"""CSV exports: one writer for every table (queue history, audit, reports)."""

from __future__ import annotations

import csv
import io

from app import csv_export
from app.customers import audit


def test_a_text_a_spreadsheet_would_run_is_quoted_and_null_is_empty() -> None:
    text = csv_export.as_csv(
        ("call_id", "queue", "count"),
        [{"call_id": "=HYPERLINK(1)", "queue": "@sales", "count": 3}, {"call_id": None}],
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["call_id", "queue", "count"],
        ["'=HYPERLINK(1)", "'@sales", "3"],
        ["", "", ""],
    ]


def test_the_audit_export_names_a_pbx_call_id_without_running_it() -> None:
    # A call id comes from the PBX: a crafted one must not become a formula in the export.
    row = {
        "viewed_at": "2026-12-05T10:00:00+00:00",
        "username": "bob",
        "customer_id": 1,
        "call_id": "-2+3",
        "reason": "call",
    }
    parsed = next(csv.DictReader(io.StringIO(audit.as_csv([row]))))
    assert parsed["call_id"] == "'-2+3"
