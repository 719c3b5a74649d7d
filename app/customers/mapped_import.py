"""``screenpop import FILE --mapping MAP.toml``: customers, orders, balances or loyalty
memberships from any CSV or JSON Lines file, through a column mapping, into the same records
a sync writes.

The mapping file (TOML)::

    entity = "customers"       # customers | orders | balances | loyalty
    source = "shop"            # whose references these are (default "import")
    format = "csv"             # csv | jsonl (default: from the file name)
    [columns]                  # screenpop column = CSV column name, or JMESPath for JSON Lines
    ref = "Customer No"
    name = "Name"
    phones = ["Phone", "Mobile"]   # several columns (or a JMESPath giving a list): all numbers
    [attributes]               # free attributes shown in the profile, by name
    segment = "Segment"

Columns and their meaning are those of ``app.customers.records``. Rows are streamed and stored
in batches (one transaction each); storing is idempotent, so an import can be run again or
resumed by running it again. The retail layout keeps its own fast importer
(``app.customers.importer``): it is the ready-made mapping ``--mapping retail``.
"""

from __future__ import annotations

import csv
import json
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

import jmespath
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from app.customers.importer import ImportFileError, open_text
from app.customers.loyalty import LOYALTY_COLUMNS
from app.customers.order_records import STORE
from app.customers.records import RecordReport, store_customers

REQUIRED = {
    "customers": ("ref", "name"),
    "orders": ("ref", "customer_ref", "ordered_at", "total"),
    "balances": ("customer_ref", "amount"),
    "loyalty": ("customer_ref", "programme"),
}
KNOWN = {
    "customers": ("ref", "name", "phones", "email", "emails", "customer_type", "language",
                  "account_manager", "credit_limit", "marketing_ok", "country", "deleted",
                  "merged_into"),
    "orders": ("ref", "customer_ref", "ordered_at", "total", "currency", "status", "lines",
               "deleted"),
    "balances": ("customer_ref", "amount", "currency", "overdue", "as_of"),
    "loyalty": LOYALTY_COLUMNS,
}  # fmt: skip
BATCH = 1000


class ColumnMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: Literal["customers", "orders", "balances", "loyalty"]
    source: str = Field(default="import", min_length=1, max_length=64)
    format: Literal["csv", "jsonl"] | None = None
    columns: dict[str, str | list[str]]
    attributes: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _columns(self) -> ColumnMapping:
        missing = [c for c in REQUIRED[self.entity] if c not in self.columns]
        if missing:
            raise ValueError(f"columns: {self.entity} need {', '.join(missing)}")
        unknown = [c for c in self.columns if c not in KNOWN[self.entity]]
        if unknown:
            raise ValueError(
                f"columns: unknown {', '.join(unknown)} (known: {', '.join(KNOWN[self.entity])};"
                " anything else goes under [attributes])"
            )
        if self.attributes and self.entity != "customers":
            raise ValueError("attributes: only customers have free attributes")
        return self

    def format_for(self, path: Path) -> str:
        if self.format is not None:
            return self.format
        name = path.name.removesuffix(".gz")
        return "jsonl" if name.endswith((".jsonl", ".ndjson")) else "csv"


def load_mapping(path: Path) -> ColumnMapping:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return ColumnMapping.model_validate(data)
    except OSError as exc:
        raise ImportFileError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ImportFileError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'mapping'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise ImportFileError(f"{path}: {'; '.join(problems)}") from None


def _csv_rows(fh: TextIO, mapping: ColumnMapping) -> Iterator[dict[str, Any]]:
    reader = csv.DictReader(fh)
    header = set(reader.fieldnames or [])
    wanted = {**mapping.columns, **mapping.attributes}
    names = {n for v in wanted.values() for n in ([v] if isinstance(v, str) else v)}
    missing = sorted(names - header)
    if missing:
        raise ImportFileError(f"missing column(s): {', '.join(missing)}")
    for line, rec in enumerate(reader, start=2):
        row: dict[str, Any] = {"_line": line}
        for column, source in wanted.items():
            if isinstance(source, str):
                row[column] = (rec.get(source) or "").strip() or None
            else:
                row[column] = [v.strip() for n in source if (v := rec.get(n) or "").strip()]
        yield row


def _jsonl_rows(
    fh: TextIO, mapping: ColumnMapping, bad: list[tuple[str, str]]
) -> Iterator[dict[str, Any]]:
    wanted = {**mapping.columns, **mapping.attributes}
    compiled = {
        column: [jmespath.compile(e) for e in ([expr] if isinstance(expr, str) else expr)]
        for column, expr in wanted.items()
    }
    for line, text in enumerate(fh, start=1):
        if not text.strip():
            continue
        try:
            document = json.loads(text)
        except ValueError:
            bad.append((f"line {line}", "not a JSON object"))
            continue
        row: dict[str, Any] = {"_line": line}
        for column, expressions in compiled.items():
            values = [e.search(document) for e in expressions]
            row[column] = values[0] if len(values) == 1 else [v for v in values if v]
        yield row


async def import_mapped(
    engine: AsyncEngine,
    path: Path,
    mapping: ColumnMapping,
    *,
    default_region: str = "GB",
    progress: Callable[[int], None] | None = None,
    batch_rows: int = BATCH,
) -> RecordReport:
    """Import ``path`` through ``mapping``; returns what was added, updated, unchanged, bad."""
    report = RecordReport()
    with open_text(path) as fh:
        if mapping.format_for(path) == "jsonl":
            rows = _jsonl_rows(fh, mapping, report.bad)
        else:
            rows = _csv_rows(fh, mapping)
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= batch_rows:
                await _store(engine, mapping, batch, report, default_region)
                if progress is not None:
                    progress(len(batch))
                batch = []
        if batch:
            await _store(engine, mapping, batch, report, default_region)
            if progress is not None:
                progress(len(batch))
    return report


async def _store(
    engine: AsyncEngine,
    mapping: ColumnMapping,
    batch: list[dict[str, Any]],
    report: RecordReport,
    region: str,
) -> None:
    async with engine.begin() as conn:
        if mapping.entity == "customers":
            await store_customers(conn, mapping.source, batch, report, region=region)
        else:
            await STORE[mapping.entity](conn, mapping.source, batch, report)
