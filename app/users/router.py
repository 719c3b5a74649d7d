from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.deps import SessionDep, SettingsDep
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


@router.post("/auth/login")
async def login(body: LoginIn, session: SessionDep, settings: SettingsDep) -> LoginOut:
    user = await users.authenticate(session, body.username, body.password)
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
