"""One part of a pop from one system of record, as fetched and as stored on a call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SINGLE_ROW_PARTS = ("identity", "balance", "loyalty")


@dataclass(frozen=True)
class Part:
    """One part of the pop from one source: ``data`` is a row (``SINGLE_ROW_PARTS``) or rows."""

    name: str
    source: str
    as_of: datetime
    data: dict[str, Any] | list[dict[str, Any]]

    def provenance(self) -> dict[str, str]:
        return {"name": self.source, "as_of": self.as_of.isoformat()}

    def as_dict(self) -> dict[str, Any]:
        """As stored on a call's pop document (``live``)."""
        return {"name": self.name, "source": self.source, "as_of": self.as_of.isoformat(),
                "data": self.data}  # fmt: skip

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> Part:
        return cls(
            item["name"], item["source"], datetime.fromisoformat(item["as_of"]), item["data"]
        )


def shape(part: str, rows: list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]] | None:
    """Rows as the part's data: the first row for identity/balance/loyalty, else the list."""
    if part in SINGLE_ROW_PARTS:
        return rows[0] if rows else None
    return rows
