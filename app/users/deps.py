"""Who is calling: ``CurrentUser``, ``CurrentAgent``, ``CurrentSupervisor``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.deps import get_state
from app.errors import Forbidden
from app.users.service import Principal, principal_from_token


def _bearer(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    # Websockets cannot set headers from a browser: the token comes as a query parameter.
    return conn.query_params.get("token")


def current_user(conn: HTTPConnection) -> Principal:
    """The caller from the token, checked against the user's current state (app.users.access)."""
    return checked_principal(conn, _bearer(conn))


def checked_principal(conn: HTTPConnection, token: str | None) -> Principal:
    """The principal ``token`` names, with its current role; 401 for a deactivated user."""
    state = get_state(conn)
    principal = principal_from_token(state["settings"].jwt_key(), token)
    access = state["services"].get("access")
    return access.check(principal) if access is not None else principal


def current_agent(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    # Supervisors and admins may act as agents (take calls, write wrap-ups).
    return user


def current_supervisor(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not user.is_supervisor:
        raise Forbidden("supervisor role required")
    return user


CurrentUser = Annotated[Principal, Depends(current_user)]
CurrentAgent = Annotated[Principal, Depends(current_agent)]
CurrentSupervisor = Annotated[Principal, Depends(current_supervisor)]
