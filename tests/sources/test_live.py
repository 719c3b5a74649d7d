"""Live parts from a MariaDB ERP and an HTTP CRM process: concurrency, budgets, breaker, cache."""

from __future__ import annotations

import asyncio

from app.calls.pop import empty_document
from app.sources.breaker import Breaker
from app.sources.config import SourcesConfig, parse_config
from app.sources.live import Caller, LiveFetch, LiveSources
from app.sources.pop_parts import merge_parts
from tests.sources.support import EXAMPLE_ENV, CrmProcess, readme_example

ADA = "+442079460111"


async def everything(fetch: LiveFetch) -> None:
    await asyncio.gather(*fetch.tasks)


def test_parameters_of_a_number() -> None:
    params = Caller("+442079460123", account_ref="A-7").params("E-1")
    assert params == {
        "e164": "+442079460123", "digits": "442079460123", "national": "02079460123",
        "last9": "079460123", "ref": "E-1", "account_ref": "A-7",
    }  # fmt: skip


async def test_a_pop_from_the_erp_and_the_crm_says_where_each_part_came_from(
    examples: SourcesConfig,
) -> None:
    live = LiveSources(examples)
    try:
        fetch = live.start("call-1", Caller(ADA))
        await everything(fetch)
        doc = merge_parts(empty_document(complete=True), fetch.parts, examples.ordered())
    finally:
        await live.close()
    customer, account = doc["customer"], doc["account"]
    # Both sources know the caller; the ERP comes first in `precedence`, so its name wins.
    assert customer["name"] == "Ada Byron"
    assert customer["refs"] == {"erp": "E-1001", "crm": "C-100"}
    assert customer["account_manager"] == "maria" and customer["marketing_consent"] is True
    assert customer["source"]["name"] == "erp"
    # Balance from the ERP (open invoices 100 overdue + 150 not yet due) ...
    assert (account["balance"], account["overdue"], account["currency"]) == (250.0, 100.0, "GBP")
    assert account["credit_limit"] == 2000.0 and account["available_credit"] == 1750.0
    assert account["source"]["name"] == "erp"
    # ... orders from the CRM (its `ref` came from its own identity part) ...
    assert [p["invoice_no"] for p in doc["purchases"]] == ["W-9001", "W-9000"]
    assert doc["purchases"][0]["total"] == 120.5
    assert {p["source"]["name"] for p in doc["purchases"]} == {"crm"}
    # ... and a part the pop has no slot for, shown as given.
    assert doc["extras"]["segment"]["rows"] == [{"segment": "gold"}]
    assert {(s["part"], s["name"]) for s in doc["sources"]} == {
        ("identity", "erp"), ("balance", "erp"), ("identity", "crm"), ("orders", "crm"),
        ("segment", "crm"),
    }  # fmt: skip
    assert all(s["as_of"] for s in doc["sources"])


def _with(config: str, extra: str) -> SourcesConfig:
    return parse_config(config + extra, EXAMPLE_ENV)


async def test_a_hanging_source_is_left_out_at_its_budget_and_the_rest_still_arrives(
    crm: CrmProcess,
) -> None:
    crm_only = readme_example("crm").replace("https://crm.example.com", crm.url)
    config = _with(
        crm_only.replace("budget_ms = 200", "budget_ms = 2000"),
        f"""
[sources.slow]
kind = "http"
budget_ms = 100
timeout_ms = 3000
headers = {{ Authorization = "Bearer ${{CRM_TOKEN}}" }}
[sources.slow.live]
balance = {{ url = "{crm.url}/api/slow", map = {{ amount = "amount" }} }}
""",
    )
    live = LiveSources(config)
    try:
        fetch = live.start("call-2", Caller(ADA))
        parts = await fetch.within_budget()
        # The CRM (a generous budget) arrived; the hanging source is still out, not waited for.
        assert {p.source for p in parts} == {"crm"}
        assert "slow" in fetch.pending
        doc = merge_parts(empty_document(complete=True), parts, config.ordered())
        assert doc["account"] is None and doc["customer"]["name"] == "Ada Byron (CRM)"
    finally:
        await live.close()


async def test_a_failing_source_opens_its_breaker_and_is_skipped(crm: CrmProcess) -> None:
    config = parse_config(
        f"""
[sources.broken]
kind = "http"
breaker_failures = 2
breaker_open_s = 600
cache_s = 0
headers = {{ Authorization = "Bearer ${{CRM_TOKEN}}" }}
[sources.broken.live]
balance = {{ url = "{crm.url}/api/broken?n={{e164}}", map = {{ amount = "amount" }} }}
""",
        EXAMPLE_ENV,
    )
    before = crm.get("/stats").get("/api/broken", 0)  # type: ignore[attr-defined]
    live = LiveSources(config)
    try:
        for n in range(4):
            fetch = live.start(f"call-b{n}", Caller(ADA))
            await everything(fetch)
            assert fetch.parts == [] and fetch.done
    finally:
        await live.close()
    assert live.breakers["broken"].state == "open"
    # Two failures opened the breaker: the third and fourth calls never reached the source.
    assert crm.get("/stats").get("/api/broken", 0) - before == 2  # type: ignore[attr-defined]


async def test_results_are_cached_per_call_and_briefly_per_customer(
    examples: SourcesConfig, crm: CrmProcess
) -> None:
    live = LiveSources(examples)
    try:
        first = live.start("call-c", Caller(ADA))
        assert live.start("call-c", Caller(ADA)) is first
        await everything(first)
        asked = crm.get("/stats")
        again = live.start("call-d", Caller(ADA))  # the same caller rings again
        await everything(again)
        assert crm.get("/stats") == {**asked, "/stats": asked["/stats"] + 1}  # type: ignore[index,operator,dict-item]
        assert sorted((p.name, p.source, p.as_of) for p in again.parts) == sorted(
            (p.name, p.source, p.as_of) for p in first.parts
        )
    finally:
        await live.close()


def test_the_breaker_lets_one_trial_through_after_its_pause() -> None:
    now = [0.0]
    breaker = Breaker(failures=2, open_s=30, clock=lambda: now[0])
    breaker.failure()
    assert breaker.allow()  # one failure is not enough
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 31
    assert breaker.allow() and not breaker.allow()  # half-open: a single trial
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 62
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()
