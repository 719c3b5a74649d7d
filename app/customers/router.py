"""Customers over HTTP: search, profile (masked, audited), quick-create, and the PBX lookup."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.requests import HTTPConnection

from app import csv_export
from app.calls.schemas import INT32_MAX, StoredText
from app.customers import audit, lookup
from app.customers import service as customers
from app.customers.quick_create import create_customer
from app.customers.routing import RoutingRules
from app.customers.schemas import (
    CustomerCandidate,
    CustomerCreate,
    CustomerCreated,
    CustomerSearch,
    PhoneTaken,
)
from app.deps import SessionDep, SettingsDep, get_state
from app.errors import Forbidden, Invalid, NotFound
from app.users.deps import CurrentAgent
from telephony.callerid import normalise
from telephony.events import QUEUE_MAX
from telephony.routing import asterisk_variables, connect_attributes

router = APIRouter(tags=["customers"])


@router.get("/api/customers")
async def search_customers(
    session: SessionDep,
    settings: SettingsDep,
    _: CurrentAgent,
    phone: Annotated[StoredText | None, Query(max_length=200)] = None,
    external_ref: Annotated[StoredText | None, Query(max_length=64)] = None,
) -> CustomerSearch:
    """Customers by phone number (the pop's matching rules) or by imported id."""
    if bool(phone) == bool(external_ref):
        raise Invalid("give exactly one of phone= or external_ref=")
    if external_ref:
        found = await customers.find_by_external_ref(session, external_ref)
        match = {"kind": "single" if found else "none", "matched_by": "external_ref"}
    else:
        caller = normalise(phone, settings.default_region)
        problem = customers.unmatchable(caller)
        if problem:
            raise Invalid(f"phone: {caller.raw[:40]!r} {problem}")
        result = await customers.resolve_caller(
            session, caller, default_region=settings.default_region
        )
        found, match = result.candidates, result.as_dict()
        match.pop("candidates")
    return CustomerSearch(customers=[CustomerCandidate(**c) for c in found], match=match)


@router.get("/api/customers/{customer_id}/profile")
async def customer_profile(
    customer_id: Annotated[int, Path(ge=1, le=INT32_MAX)],
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentAgent,
    call_id: Annotated[StoredText | None, Query(max_length=200)] = None,
    reason: Annotated[Literal["search", "lookup"], Query()] = "lookup",
) -> JSONResponse:
    """The pop's profile document, masked for the caller's role; every view is logged with
    its reason (the call, or ``search`` from the agent desk's search / ``lookup``), and the
    log row is committed before the profile is sent. A ``call_id`` must be a call the viewer
    is or was on (or supervises): 403 otherwise, 404 for an unknown call."""
    if call_id:
        await audit.check_call_reason(session, user, call_id)
    doc = await customers.assemble_profile(
        session, customer_id, decline_suppress_days=settings.decline_suppress_days
    )
    await customers.log_profile_view(
        session,
        username=user.username,
        customer_id=customer_id,
        call_id=call_id or None,
        reason="call" if call_id else reason,
    )
    await session.commit()
    return JSONResponse(customers.mask_profile(doc, user.role, settings))


@router.get("/api/audit", response_model=None)
async def audit_log(
    session: SessionDep,
    user: CurrentAgent,
    customer_id: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    username: Annotated[StoredText | None, Query(max_length=64)] = None,
    date: Annotated[dt.date | None, Query(description="a UTC day, YYYY-MM-DD")] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """Profile views, newest first (admins only): by customer, user and UTC day; JSON or CSV."""
    if user.role != "admin":
        raise Forbidden("admin role required")
    rows = await audit.profile_views(session, customer_id=customer_id, username=username, day=date)
    if format == "csv":
        return PlainTextResponse(audit.as_csv(rows), media_type=csv_export.MEDIA_TYPE)
    return JSONResponse({"views": rows})


@router.post(
    "/api/customers",
    status_code=201,
    responses={409: {"model": PhoneTaken, "description": "the phone is already a customer's: who"}},
)
async def quick_create(
    body: CustomerCreate, session: SessionDep, settings: SettingsDep, _: CurrentAgent
) -> CustomerCreated:
    """Create a customer for an unknown caller; the phone is stored normalised (E.164). A
    phone that already reaches customers is 409 with them in ``customers`` (id, name,
    external_ref), unless ``shared_phone`` is true."""
    customer_id = await create_customer(session, body, default_region=settings.default_region)
    stored = normalise(body.phone, settings.default_region).e164 if body.phone else None
    return CustomerCreated(id=customer_id, name=body.name, phone=stored)


def routing_rules(conn: HTTPConnection) -> RoutingRules:
    """The routing rules loaded at start (``SCREENPOP_ROUTING_FILE`` or the defaults)."""
    return get_state(conn)["services"]["routing"]


RulesDep = Annotated[RoutingRules, Depends(routing_rules)]
LookupFormat = Literal["json", "text", "asterisk", "connect"]


@router.get("/telephony/lookup", response_model=None)
async def pbx_lookup(
    session: SessionDep,
    settings: SettingsDep,
    rules: RulesDep,
    number: Annotated[str, Query(min_length=1, max_length=200)],
    format: Annotated[LookupFormat, Query()] = "json",
    queue: Annotated[
        StoredText | None,
        Query(max_length=QUEUE_MAX, description="the PBX's queue; a routing rule may change it"),
    ] = None,
    key: Annotated[str | None, Query(max_length=256)] = None,
    x_api_key: Annotated[str | None, Header(max_length=256)] = None,
) -> Response:
    """Caller name by number for 3CX (JSON, with ``routing``) and FreePBX Superfecta
    (``format=text``); routing hints alone for Asterisk (``format=asterisk``: ``QUEUE_PRIO=…&…``
    for ``CURL()`` with ``hashcompat``) and Amazon Connect (``format=connect``: a Lambda's flat
    string map). Those two answer unknown and withheld callers too, with the default routing."""
    lookup.check_api_key(settings, x_api_key or key)
    found = await lookup.lookup(session, number, settings, rules, queue=queue or None)
    if format == "asterisk":
        return PlainTextResponse(asterisk_variables(found.hints, rules.asterisk.member))
    if format == "connect":
        return JSONResponse(connect_attributes(found.hints))
    if found.contact is None:
        if format == "text":
            # Superfecta reads any body as a name: unknown callers get an empty one.
            return PlainTextResponse("", status_code=404)
        raise NotFound(found.missing)
    if format == "text":
        return PlainTextResponse(found.contact["name"])
    return JSONResponse(found.contact)
