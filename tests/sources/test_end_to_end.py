"""The issue's "done when", end to end: a real server with the README's two examples.

A call from the MariaDB ERP's customer pops on a real websocket with the balance from the ERP
and the orders from the HTTP CRM, each saying where it came from; the wrap-up's activity is
written in the wrap-up's transaction and the server's own deliverer takes it to the CRM, once.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect

from app.sources.config import SourcesConfig
from app.sources.sync import sync_source
from tests.calls.support import GENERIC, bearer, event, new_call_id, signed, token
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET, add_user
from tests.sources.support import EXAMPLE_ENV, CrmProcess, examples_config
from tests.support.server import ServerProcess

ADA = "020 7946 0111"  # as the ERP has it; the PBX sends it as typed


def has_every_part(message: dict[str, Any]) -> bool:
    account = message.get("account") or {}
    purchases = message.get("purchases") or []
    return (account.get("source") or {}).get("name") == "erp" and any(
        (p.get("source") or {}).get("name") == "crm" for p in purchases
    )


async def test_a_pop_from_the_erp_and_the_crm_and_the_wrapup_journaled_back(
    clean_engine: AsyncEngine,
    database_url: str,
    examples: SourcesConfig,
    erp_url: str,
    crm: CrmProcess,
    tmp_path: Path,
) -> None:
    await sync_source(clean_engine, "erp", examples.sources["erp"])
    await add_user(clean_engine, "alice", extension="201", queues=["sales"])
    sources_file = tmp_path / "sources.toml"
    sources_file.write_text(examples_config(erp_url, crm.url))
    server = ServerProcess(
        {
            "SCREENPOP_DATABASE_URL": database_url,
            "SCREENPOP_JWT_SECRET": TEST_JWT_SECRET,
            "SCREENPOP_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
            "SCREENPOP_SOURCES_FILE": str(sources_file),
            "SCREENPOP_LOG_JSON": "false",
            **EXAMPLE_ENV,
        }
    )
    await asyncio.to_thread(server.start)
    call_id = new_call_id()
    try:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10) as http,
            connect(f"{server.ws_url}/ws/agent?token={token('alice')}", open_timeout=5) as ws,
        ):

            async def post(kind: str, **fields: Any) -> None:
                raw, headers = signed(event(call_id, kind, caller=ADA, queue="sales", **fields))
                response = await http.post(GENERIC, content=raw, headers=headers)
                assert response.status_code == 202, response.text

            await post("queued")
            await post("offered", agent="alice")
            seen: list[dict[str, Any]] = []
            async with asyncio.timeout(20):
                while not seen or not has_every_part(seen[-1]):
                    message = json.loads(await ws.recv())
                    if (message.get("call") or {}).get("id") == f"generic:{call_id}":
                        seen.append(message)
            pop = seen[-1]
            assert pop["type"] in ("pop", "pop.update")
            assert pop["customer"]["name"] == "Ada Byron"
            assert pop["account"]["balance"] == 250.0 and pop["account"]["overdue"] == 100.0
            assert [p["invoice_no"] for p in pop["purchases"]] == ["W-9001", "W-9000"]
            assert {s["name"] for s in pop["sources"]} == {"erp", "crm"}

            await post("answered", agent="alice")
            await post("ended", agent="alice")
            wrapup = await http.post(
                f"/api/calls/generic:{call_id}/wrapup",
                json={"disposition": "resolved", "notes": "teapot on its way", "satisfaction": 5},
                headers=bearer("alice"),
            )
            assert wrapup.status_code in (200, 201), wrapup.text
            delivered: list[dict[str, Any]] = []
            async with asyncio.timeout(20):
                while not delivered:
                    received = (await http.get(f"{crm.url}/received")).json()
                    delivered = [
                        r for r in received if r["body"]["data"]["call_id"] == f"generic:{call_id}"
                    ]
                    await asyncio.sleep(0.2)
            await asyncio.sleep(1.5)  # the deliverer's next rounds must not send it again
            received = (await http.get(f"{crm.url}/received")).json()
    finally:
        await asyncio.to_thread(server.stop)
    again = [r for r in received if r["body"]["data"]["call_id"] == f"generic:{call_id}"]
    assert len(again) == 1
    data = again[0]["body"]["data"]
    assert data["disposition"] == "resolved" and data["agent"] == "alice"
    assert data["customer_refs"] == {"erp": "E-1001"}
