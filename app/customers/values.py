"""Reading record values as screenpop stores them: times, money, flags, phone lists.

Each raises ``ValueError`` naming the column, so an importer or a sync can report the row.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

TRUE = {"1", "true", "t", "yes", "y", "on"}
FALSE = {"0", "false", "f", "no", "n", "off", ""}


def text_or_none(value: Any, limit: int, column: str) -> str | None:
    """The text without surrounding spaces, None when empty; longer than ``limit`` (its
    column's size) is refused, naming ``column``: a value is stored whole or not at all."""
    text = text_key(value)
    if text is not None and len(text) > limit:
        raise ValueError(f"{column} is {len(text)} characters long; the limit is {limit}")
    if text is not None and "\x00" in text:
        raise ValueError(f"{column} contains a NUL character")
    return text


def text_key(value: Any, limit: int | None = None) -> str | None:
    """The text as ``text_or_none`` reads it, for looking a batch's keys up: None when empty
    or longer than ``limit`` (such a row is refused when it is read itself)."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or (limit is not None and len(text) > limit):
        return None
    return text


def to_utc(value: Any, column: str) -> datetime | None:
    """A datetime, date or ISO 8601 string as an aware UTC datetime (naive: read as UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{column} {value!r} is not an ISO 8601 time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def to_decimal(value: Any, column: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{column} {value!r} is not a number") from None
    if not result.is_finite():
        raise ValueError(f"{column} {value!r} is not a number")
    return result


def to_bool(value: Any, column: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool | int):
        return bool(value)
    lowered = str(value).strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(f"{column} {value!r} is not yes/no")


def to_list(value: Any, column: str) -> list[str]:
    """A list of strings from a list, a JSON array, or text separated by commas/semicolons."""
    if value is None:
        return []
    if isinstance(value, list):
        items = value
    else:
        raw = str(value).strip()
        if raw.startswith("["):
            try:
                items = json.loads(raw)
            except ValueError:
                raise ValueError(f"{column} {raw[:40]!r} is not a JSON array") from None
        else:
            items = raw.replace(";", ",").split(",")
    return [str(item).strip() for item in items if item is not None and str(item).strip()]


def to_json_list(value: Any, column: str) -> list[dict[str, Any]] | None:
    """Order lines: a list of objects, or the same as JSON text."""
    if value is None or value == "":
        return None
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"{column} is not JSON") from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{column} is not a JSON array of objects")
    return value
