from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.deps import SessionDep, SettingsDep, StateDep
from app.errors import Unauthorized, error_response
from app.users import security
from app.users import service as users
from app.users.deps import CurrentUser

router = APIRouter(prefix="/api", tags=["auth"])


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class LoginOut(BaseModel):
    token: str
    username: str
    role: str
    extension: str | None
    queues: list[str]


class MeOut(BaseModel):
    username: str
    role: str


class ErrorOut(BaseModel):
    error: str
    detail: str


@router.post(
    "/auth/login",
    response_model=LoginOut,
    responses={
        401: {"model": ErrorOut, "description": "wrong username or password"},
        429: {"model": ErrorOut, "description": "too many failed sign-ins; see Retry-After"},
        503: {
            "model": ErrorOut,
            "description": "too many sign-ins waiting for verification (`overloaded`) or the "
            "database is unreachable (`unavailable`); see Retry-After",
        },
    },
)
async def login(
    body: LoginIn, request: Request, session: SessionDep, settings: SettingsDep, state: StateDep
) -> LoginOut | JSONResponse:
    """A token for the user; failed attempts are limited per username and per address."""
    limiter = state["services"]["login_limits"]
    address = request.client.host if request.client is not None else "unknown"
    wait = limiter.retry_after(body.username, address)
    if wait:
        refused = error_response(
            429, "too_many_requests", f"too many failed sign-ins; try again in {wait} s"
        )
        refused.headers["Retry-After"] = str(wait)
        return refused
    try:
        user = await users.authenticate(
            session, state["services"]["passwords"], body.username, body.password
        )
    except Unauthorized:
        limiter.failed(body.username, address)
        raise
    limiter.succeeded(body.username)
    token = security.issue_token(
        settings.jwt_key(), username=user.username, role=user.role, ttl_s=settings.jwt_ttl_s
    )
    return LoginOut(
        token=token,
        username=user.username,
        role=user.role,
        extension=user.extension,
        queues=list(user.queues),
    )


@router.get("/auth/me")
async def me(user: CurrentUser) -> MeOut:
    return MeOut(username=user.username, role=user.role)
