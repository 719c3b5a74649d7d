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
    return principal_from_token(get_state(conn)["settings"].jwt_key(), _bearer(conn))


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
