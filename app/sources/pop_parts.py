"""Live parts into the pop document, each saying where it came from and how fresh it is.

* ``identity`` -> ``customer``: the source's non-null columns over what screenpop knows
  (``marketing_ok`` becomes ``marketing_consent``; ``ref`` lands in ``refs``), or the whole
  ``customer`` when screenpop's database does not know the caller;
* ``balance`` -> ``account``: ``balance`` (from ``amount``), ``currency``, ``overdue``,
  ``balance_as_of`` (the source's ``as_of``), and ``available_credit`` again;
* ``orders`` -> ``purchases``: the source's orders replace the stored ones (a record system
  is the record), each ``{"invoice_no", "ordered_at", "total", "currency", "status",
  "items": [], "source"}``;
* ``loyalty`` -> ``loyalty``: ``programme``, ``tier``, ``points``, ``since`` (an ISO date)
  from the source's row, ``computed`` False; it replaces the stored or computed membership
  (a row without ``programme`` leaves the pop's ``loyalty`` as it was);
* any other part -> ``extras[name] = {"rows": [...], "source"}``.

Every part carries ``"source": {"name", "as_of"}``; ``sources`` lists them all. When two
sources give the same part, the one earlier in ``precedence`` wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.customers.loyalty import membership
from app.sources.parts import Part


def _number(value: Any) -> float | None:
    try:
        return None if value is None else round(float(value), 2)
    except (TypeError, ValueError):
        return None


def _customer(doc: dict[str, Any], part: Part) -> None:
    row = part.data if isinstance(part.data, dict) else {}
    customer = dict(doc.get("customer") or {})
    for column, value in row.items():
        if value is None or column == "credit_limit":
            continue
        if column == "ref":
            customer["refs"] = {**customer.get("refs", {}), part.source: str(value)}
        elif column == "marketing_ok":
            customer["marketing_consent"] = bool(value)
        else:
            customer[column] = value
    customer["source"] = part.provenance()
    doc["customer"] = customer
    if row.get("credit_limit") is not None:
        account = dict(doc.get("account") or {})
        account["credit_limit"] = _number(row["credit_limit"])
        _available(account)
        doc["account"] = account


def _available(account: dict[str, Any]) -> None:
    balance, limit = account.get("balance"), account.get("credit_limit")
    if balance is not None and limit is not None:
        account["available_credit"] = round(limit - balance, 2)


def _account(doc: dict[str, Any], part: Part) -> None:
    row = part.data if isinstance(part.data, dict) else {}
    account = dict(doc.get("account") or {"masked": False})
    account["balance"] = _number(row.get("amount"))
    for column in ("currency", "overdue"):
        if row.get(column) is not None:
            account[column] = _number(row[column]) if column == "overdue" else row[column]
    account["balance_as_of"] = row.get("as_of")
    account["source"] = part.provenance()
    _available(account)
    doc["account"] = account


def _purchases(doc: dict[str, Any], part: Part) -> None:
    rows = part.data if isinstance(part.data, list) else [part.data]
    doc["purchases"] = [
        {
            "invoice_no": None if row.get("ref") is None else str(row["ref"]),
            "ordered_at": row.get("ordered_at"),
            "total": _number(row.get("total")),
            "currency": row.get("currency"),
            "status": row.get("status"),
            "is_return": False,
            "items": [],
            "source": part.provenance(),
        }
        for row in rows
    ]


def _loyalty(doc: dict[str, Any], part: Part) -> None:
    row = part.data if isinstance(part.data, dict) else {}
    if row.get("programme") is None:
        return
    doc["loyalty"] = membership(
        str(row["programme"]),
        None if row.get("tier") is None else str(row["tier"]),
        row.get("points"),
        row.get("since"),
        part.provenance(),
    )


APPLY = {"identity": _customer, "balance": _account, "orders": _purchases, "loyalty": _loyalty}


def with_live(doc: dict[str, Any]) -> dict[str, Any]:
    """A pop document with its stored live parts (``doc["live"]``, written by
    ``app.sources.follow``, best precedence first) merged in; the document itself when it
    has none."""
    stored = doc.get("live")
    if not stored:
        return doc
    parts = [Part.from_dict(item) for item in stored]
    order = list(dict.fromkeys(p.source for p in parts))
    return merge_parts({k: v for k, v in doc.items() if k != "live"}, parts, order)


def merge_parts(
    doc: dict[str, Any], parts: Sequence[Part], precedence: Sequence[str]
) -> dict[str, Any]:
    """A copy of the pop document with the live parts in (see the module docstring)."""
    out = dict(doc)
    rank = {name: i for i, name in enumerate(precedence)}
    # Lowest precedence first, so the winner is applied last.
    ordered = sorted(parts, key=lambda p: rank.get(p.source, len(rank)), reverse=True)
    extras = dict(out.get("extras") or {})
    for part in ordered:
        apply = APPLY.get(part.name)
        if apply is not None:
            apply(out, part)
        else:
            rows = part.data if isinstance(part.data, list) else [part.data]
            extras[part.name] = {"rows": rows, "source": part.provenance()}
    if extras:
        out["extras"] = extras
    out["sources"] = [{"part": p.name, **p.provenance()} for p in reversed(ordered)]
    return out
