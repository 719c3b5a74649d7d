"""Request dependencies shared by every domain: the lifespan state and a session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from app.settings import Settings
from app.state import State


def get_state(conn: HTTPConnection) -> State:
    return cast(State, conn.state._state)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the handler returns, rolled back on error."""
    factory = get_state(request)["sessionmaker"]
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def get_app_settings(conn: HTTPConnection) -> Settings:
    return get_state(conn)["settings"]


StateDep = Annotated[State, Depends(get_state)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
