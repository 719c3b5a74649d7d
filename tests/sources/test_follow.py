"""A call followed from first sight: parts stored raw on the call, merged into each pop."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.calls.pop import empty_document, pop_message
from app.customers.records import refs_of
from app.customers.repository import customer_id_by_external_ref
from app.settings import Settings
from app.sources.config import SourcesConfig
from app.sources.follow import caller_of, follow_call
from app.sources.live import LiveSources
from app.sources.sync import sync_source


async def test_a_followed_call_pops_with_every_part_from_both_sources(
    clean_engine: AsyncEngine, examples: SourcesConfig, settings: Settings
) -> None:
    await sync_source(clean_engine, "erp", examples.sources["erp"])
    sessions = async_sessionmaker(clean_engine)
    async with sessions() as session:
        customer_id = await customer_id_by_external_ref(session, "E-1001")
        assert await refs_of(session, customer_id) == {"erp": "E-1001"}
    call: dict[str, Any] = {
        "id": "generic:f-1", "state": "ringing", "caller_raw": "02079460111",
        "caller_e164": "+442079460111", "customer_id": customer_id,
        "match": {"kind": "single", "candidates": []}, "pop": empty_document(complete=True),
        "pop_version": 1,
    }  # fmt: skip
    stored: list[list[dict[str, Any]]] = []

    async def store(parts: list[dict[str, Any]]) -> None:
        stored.append(parts)

    live = LiveSources(examples)
    try:
        await follow_call(live, sessions, call, store)
    finally:
        await live.close()
    assert stored, "nothing arrived"
    call["pop"] = {**call["pop"], "live": stored[-1]}
    message = pop_message(call, role="agent", settings=settings)
    assert message["account"]["balance"] == 250.0
    assert message["account"]["source"]["name"] == "erp"
    assert [p["invoice_no"] for p in message["purchases"]] == ["W-9001", "W-9000"]
    assert {s["name"] for s in message["sources"]} == {"erp", "crm"}
    masked = pop_message(call, role="viewer", settings=settings)
    assert masked["account"]["balance"] is None and masked["account"]["overdue"] is None


def test_a_withheld_caller_without_references_is_not_looked_up() -> None:
    assert caller_of({"caller_e164": None, "match": {"kind": "withheld"}}, {}) is None
    asked = caller_of({"caller_e164": None, "match": {"account_ref": "E-1001"}}, {})
    assert asked is not None and asked.account_ref == "E-1001"
