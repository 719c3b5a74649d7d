"""The loyalty part: docs/sources.md's loyalty club in a MariaDB ERP, fetched live into the pop
(over the computed programme) and synced into screenpop's database."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.calls.pop import empty_document, pop_message
from app.customers.models import CustomerRef, LoyaltyMembership
from app.sources.config import parse_config
from app.sources.live import Caller, LiveSources
from app.sources.parts import Part
from app.sources.pop_parts import merge_parts
from app.sources.sync import sync_source
from tests.conftest import make_settings
from tests.sources.support import EXAMPLE_ENV, readme_example, run_sql

ADA = "+442079460111"  # E-1001 in tests/sources/erp_data.sql
COX = "+447700900333"  # E-1002: no membership
DOCS_URL = "mysql+asyncmy://screenpop:${ERP_PASSWORD}@erp-db:3306/erp"
COMPUTED = {"programme": "frequency", "tier": "bronze", "points": 12, "since": "2010-12-01",
            "computed": True, "source": None, "basis": {}}  # fmt: skip


async def _club(erp_url: str) -> None:
    await run_sql(erp_url, readme_example("loyalty-schema"))
    await run_sql(
        erp_url,
        "INSERT INTO loyalty_members VALUES "
        "(1, 'Tea Club', 'gold', 1250, '2024-03-01', '2026-11-05 09:00:00')",
    )


async def _parts(erp_url: str, number: str) -> list[Part]:
    config = parse_config(readme_example("loyalty").replace(DOCS_URL, erp_url), EXAMPLE_ENV)
    live = LiveSources(config)
    try:
        fetch = live.start("call-1", Caller(number))
        await asyncio.gather(*fetch.tasks)
    finally:
        await live.close()
    return list(fetch.parts)


async def test_a_live_loyalty_part_pops_the_membership_over_the_computed_programme(
    erp_url: str, database_url: str
) -> None:
    await _club(erp_url)
    parts = await _parts(erp_url, ADA)
    assert [(p.name, p.source) for p in parts] == [("loyalty", "club")]
    stored = {**empty_document(complete=True), "loyalty": COMPUTED}
    doc = merge_parts(stored, parts, ["club"])
    as_of = parts[0].as_of.isoformat()
    assert doc["loyalty"] == {
        "programme": "Tea Club", "tier": "gold", "points": 1250, "since": "2024-03-01",
        "computed": False, "source": {"name": "club", "as_of": as_of},
    }  # fmt: skip
    assert {"part": "loyalty", "name": "club", "as_of": as_of} in doc["sources"]

    # The same part stored raw on a call, as app.sources.follow keeps it, reaches the agent.
    call: dict[str, Any] = {
        "id": "generic:c-1", "state": "ringing",
        "pop": {**stored, "live": [p.as_dict() for p in parts]},
    }  # fmt: skip
    message = pop_message(call, role="agent", settings=make_settings(database_url))
    assert message["loyalty"]["programme"] == "Tea Club"
    assert message["loyalty"]["source"]["name"] == "club"


async def test_a_caller_the_club_does_not_know_keeps_the_computed_programme(erp_url: str) -> None:
    await _club(erp_url)
    parts = await _parts(erp_url, COX)
    doc = merge_parts({**empty_document(complete=True), "loyalty": COMPUTED}, parts, ["club"])
    assert doc["loyalty"] == COMPUTED


async def test_a_sync_stores_memberships_and_a_second_run_changes_nothing(
    erp_url: str, clean_engine: AsyncEngine
) -> None:
    await _club(erp_url)
    erp = (
        readme_example("erp").replace(DOCS_URL, erp_url).replace('precedence = ["erp", "crm"]', "")
    )
    anchor = "[sources.erp.sync]\nschedule_s = 300\n"
    assert anchor in erp
    erp = erp.replace(anchor, anchor + readme_example("loyalty-sync"))
    source = parse_config(erp, EXAMPLE_ENV).sources["erp"]

    first = await sync_source(clean_engine, "erp", source)
    assert first["loyalty"].as_dict()["added"] == 1
    async with AsyncSession(clean_engine) as session:
        row = (
            await session.execute(
                select(LoyaltyMembership)
                .join(CustomerRef, CustomerRef.customer_id == LoyaltyMembership.customer_id)
                .where(CustomerRef.source == "erp", CustomerRef.ref == "E-1001")
            )
        ).scalar_one()
        assert (row.programme, row.tier, row.points, row.source) == (
            "Tea Club",
            "gold",
            1250,
            "erp",
        )
        assert row.since is not None and row.since.date().isoformat() == "2024-03-01"

    again = await sync_source(clean_engine, "erp", source, full=True)
    assert again["loyalty"].as_dict()["unchanged"] == 1
