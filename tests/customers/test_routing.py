"""Routing hints from the profile: the rules file, and the PBX lookup's JSON, Asterisk and
Amazon Connect answers over HTTP (ASGI) on a real database."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.customers.models import Customer
from app.customers.routing import RoutingRules, RoutingRulesError, load_rules, parse_rules
from app.insights.models import CustomerInsight
from app.users.models import User
from tests.conftest import add_user
from tests.customers.factories import CustomerSpec, add_customer, app_client, phone

KEY = "lookup-key-for-routing-tests-0123"
VIP = "+442079460201"
PLAIN = "+442079460202"
UNKNOWN = "+442079460299"


async def add_insight(
    session: AsyncSession, customer_id: int, tier: str, stage: str, potential: bool = False
) -> None:
    await session.execute(
        insert(CustomerInsight).values(
            customer_id=customer_id,
            value_tier=tier,
            segment="loyal",
            stage=stage,
            potential=potential,
            details={},
        )
    )


async def seed(engine: AsyncEngine) -> dict[str, int]:
    """alice (ext 201, worker WK1) manages Vera: high value, at risk, over her limit, French."""
    await add_user(engine, "alice", extension="201", queues=["sales"])
    await add_user(engine, "bob", extension="202", queues=["sales"])
    async with AsyncSession(engine) as session:
        vera = await add_customer(
            session,
            CustomerSpec("Vera Mont", phones=[phone(VIP)], balance="900", credit_limit="500"),
        )
        paul = await add_customer(session, CustomerSpec("Paul Low", phones=[phone(PLAIN)]))
        await session.execute(
            update(Customer).where(Customer.id == vera).values(account_manager="201", language="fr")
        )
        await add_insight(session, vera, "high", "dissolution")
        await add_insight(session, paul, "low", "commitment")
        await session.execute(
            update(User).where(User.username == "alice").values(worker_id="WK0123")
        )
        await session.commit()
    return {"vera": vera, "paul": paul}


async def test_lookup_json_carries_the_routing_hints(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    ids = await seed(clean_engine)
    async with app_client(database_url, lookup_api_key=KEY) as http:
        vip = await http.get(
            "/telephony/lookup", params={"number": VIP, "queue": "sales", "key": KEY}
        )
        plain = await http.get("/telephony/lookup", params={"number": PLAIN, "key": KEY})
    assert vip.status_code == 200 and vip.json()["customer_id"] == str(ids["vera"])
    # Defaults: high tier 30 + at risk 20 + over limit 10.
    assert vip.json()["routing"] == {
        "priority": 60,
        "reasons": ["tier:high", "at_risk", "over_limit"],
        "value_tier": "high",
        "at_risk": True,
        "over_limit": True,
        "account_manager": "201",
        "preferred_agent": {"username": "alice", "extension": "201", "worker_id": "WK0123"},
        "fallback_after_s": 30,
        "language": "fr",
        "queue": "sales",  # no queue rule by default: the PBX's own queue stays
    }
    assert plain.json()["routing"]["priority"] == 0
    assert plain.json()["routing"]["preferred_agent"] is None
    assert plain.json()["routing"]["fallback_after_s"] is None
    assert plain.json()["routing"]["queue"] is None


async def test_lookup_asterisk_answer_is_a_curl_hashcompat_line(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    await seed(clean_engine)
    async with app_client(database_url, lookup_api_key=KEY) as http:
        vip = await http.get(
            "/telephony/lookup",
            params={"number": "02079460201", "format": "asterisk", "queue": "sales", "key": KEY},
        )
        unknown = await http.get(
            "/telephony/lookup",
            params={"number": UNKNOWN, "format": "asterisk", "queue": "sales", "key": KEY},
        )
        withheld = await http.get(
            "/telephony/lookup", params={"number": "anonymous", "format": "asterisk", "key": KEY}
        )
    assert vip.status_code == 200 and vip.headers["content-type"].startswith("text/plain")
    assert "\n" not in vip.text and "+" not in vip.text  # one line; spaces as %20
    pairs = parse_qsl(vip.text, keep_blank_values=True)
    assert [k for k, _ in pairs][:2] == ["QUEUE_PRIO", "SCREENPOP_MATCH"]
    values = dict(pairs)
    assert values == values | {
        "QUEUE_PRIO": "60",
        "SCREENPOP_MATCH": "single",
        "SCREENPOP_NAME": "Vera Mont",
        "SCREENPOP_TIER": "high",
        "SCREENPOP_LANGUAGE": "fr",
        "SCREENPOP_QUEUE": "sales",
        "SCREENPOP_AGENT": "alice",
        "SCREENPOP_EXTENSION": "201",
        "SCREENPOP_MEMBER": "PJSIP/201",
        "SCREENPOP_FALLBACK_S": "30",
    }
    assert "SCREENPOP_NAME=Vera%20Mont" in vip.text and "PJSIP%2F201" in vip.text
    # An unknown caller still gets every key, with the default routing, and a 200.
    assert unknown.status_code == 200
    assert dict(parse_qsl(unknown.text, keep_blank_values=True)) == {
        "QUEUE_PRIO": "0",
        "SCREENPOP_MATCH": "none",
        "SCREENPOP_CUSTOMER_ID": "",
        "SCREENPOP_NAME": "",
        "SCREENPOP_TIER": "",
        "SCREENPOP_LANGUAGE": "",
        "SCREENPOP_QUEUE": "sales",
        "SCREENPOP_AGENT": "",
        "SCREENPOP_EXTENSION": "",
        "SCREENPOP_MEMBER": "",
        "SCREENPOP_FALLBACK_S": "",
    }
    assert withheld.status_code == 200
    assert dict(parse_qsl(withheld.text, keep_blank_values=True))["SCREENPOP_MATCH"] == "withheld"


async def test_lookup_connect_answer_is_a_flat_string_map(
    clean_engine: AsyncEngine, database_url: str
) -> None:
    ids = await seed(clean_engine)
    async with app_client(database_url, lookup_api_key=KEY) as http:
        vip = await http.get(
            "/telephony/lookup", params={"number": VIP, "format": "connect"},
            headers={"X-API-Key": KEY},
        )  # fmt: skip
        unknown = await http.get(
            "/telephony/lookup", params={"number": UNKNOWN, "format": "connect", "key": KEY}
        )
    body = vip.json()
    assert vip.status_code == 200 and all(isinstance(v, str) for v in body.values())
    assert body == body | {
        "screenpop_match": "single",
        "screenpop_customer_id": str(ids["vera"]),
        "screenpop_priority": "60",
        "screenpop_connect_priority": "1",  # 5 - 60 // 10, never above Connect's highest (1)
        "screenpop_at_risk": "true",
        "screenpop_over_limit": "true",
        "screenpop_language": "fr",
        "screenpop_preferred_agent": "alice",
        "screenpop_preferred_agent_id": "WK0123",
        "screenpop_fallback_after_s": "30",
        "screenpop_queue": "",
    }
    assert unknown.status_code == 200
    assert unknown.json()["screenpop_connect_priority"] == "5"  # Connect's default
    assert unknown.json()["screenpop_match"] == "none"


async def test_a_routing_file_changes_priorities_and_queues(
    clean_engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await seed(clean_engine)
    rules = tmp_path / "routing.toml"
    rules.write_text(
        "[priority]\n"
        "tiers = { high = 50, low = 5 }\n"
        "at_risk = 0\n"
        "over_limit = -20\n"
        "[preferred_agent]\n"
        "fallback_after_s = 45\n"
        "[queues]\n"
        'languages = { FR = "sales-fr" }\n'
        "[asterisk]\n"
        'member = "SIP/{username}"\n'
    )
    async with app_client(database_url, lookup_api_key=KEY, routing_file=rules) as http:
        vip = await http.get("/telephony/lookup", params={"number": VIP, "key": KEY})
        plain = await http.get(
            "/telephony/lookup", params={"number": PLAIN, "queue": "sales", "key": KEY}
        )
        line = await http.get(
            "/telephony/lookup", params={"number": VIP, "format": "asterisk", "key": KEY}
        )
    routing = vip.json()["routing"]
    assert (routing["priority"], routing["reasons"]) == (30, ["tier:high", "over_limit"])
    assert routing["queue"] == "sales-fr" and routing["fallback_after_s"] == 45
    assert plain.json()["routing"]["priority"] == 5
    assert plain.json()["routing"]["queue"] == "sales"  # no rule for English: the PBX's queue
    values = dict(parse_qsl(line.text, keep_blank_values=True))
    assert values["SCREENPOP_MEMBER"] == "SIP/alice" and values["SCREENPOP_QUEUE"] == "sales-fr"


async def test_an_over_limit_queue_rule_wins_and_priority_never_goes_below_zero(
    clean_engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    await seed(clean_engine)
    rules = tmp_path / "routing.toml"
    rules.write_text(
        "[priority]\nbase = -100\n"
        '[queues]\nover_limit = "credit-control"\nat_risk = "retention"\n'
        'tiers = { high = "vip" }\n'
    )
    async with app_client(database_url, lookup_api_key=KEY, routing_file=rules) as http:
        vip = await http.get("/telephony/lookup", params={"number": VIP, "key": KEY})
    assert vip.json()["routing"]["queue"] == "credit-control"
    assert vip.json()["routing"]["priority"] == 0  # -100 + 60, floored


def test_the_defaults_are_the_documented_ones() -> None:
    rules = RoutingRules()
    assert rules.priority.tiers == {"high": 30, "medium": 10, "low": 0}
    assert (rules.priority.base, rules.priority.potential) == (0, 5)
    assert (rules.priority.at_risk, rules.priority.over_limit) == (20, 10)
    assert rules.preferred_agent.fallback_after_s == 30
    assert rules.queues.tiers == {} and rules.queues.over_limit is None
    assert rules.asterisk.member == "PJSIP/{extension}"
    assert load_rules(None) == rules
    docs = (Path(__file__).resolve().parents[2] / "docs" / "routing.md").read_text()
    assert "tiers = { high = 30, medium = 10, low = 0 }" in docs


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[priority]\ntiers = { gold = 5 }\n", "priority.tiers: unknown tier(s) gold"),
        ("[priority]\nvip = 5\n", "priority.vip: unknown key"),
        ("[queues]\nat_risk = ''\n", "queues.at_risk: a queue name is 1 to 64 characters"),
        ("[asterisk]\nmember = 'PJSIP/{ext}'\n", "asterisk.member"),
        ("[preferred_agent]\nfallback_after_s = -1\n", "preferred_agent.fallback_after_s"),
        ("[priority\n", "not valid TOML"),
    ],
)
def test_a_bad_routing_file_is_refused_naming_the_key(text: str, named: str) -> None:
    with pytest.raises(RoutingRulesError) as info:
        parse_rules(text)
    assert named in str(info.value)


async def test_the_service_refuses_to_start_on_a_bad_routing_file(
    database_url: str, tmp_path: Path
) -> None:
    rules = tmp_path / "routing.toml"
    rules.write_text("[queues]\ntiers = { platinum = 'vip' }\n")
    with pytest.raises(RoutingRulesError, match=r"queues\.tiers"):
        async with app_client(database_url, routing_file=rules):
            pass
