"""Users: create, import, authenticate."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid, Unauthorized
from app.queues.names import check_queue_name
from app.users import security
from app.users.hashing import PasswordVerifier
from app.users.models import ROLES, User


@dataclass(frozen=True)
class Principal:
    """Who is calling, from a verified token."""

    username: str
    role: str

    @property
    def is_supervisor(self) -> bool:
        return self.role in ("supervisor", "admin")


async def get_by_username(session: AsyncSession, username: str) -> User | None:
    return (
        await session.execute(select(User).where(User.username == username))
    ).scalar_one_or_none()


async def upsert_user(
    session: AsyncSession,
    *,
    username: str,
    role: str,
    password: str | None,
    extension: str | None = None,
    queues: list[str] | None = None,
    worker_id: str | None = None,
) -> tuple[User, bool]:
    """Create a user, or update the one with that username. Returns (user, created)."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not username.strip():
        raise Invalid("username must not be empty")
    for queue in queues or ():
        check_queue_name(queue, field="queues")
    user = await get_by_username(session, username)
    created = user is None
    if user is None:
        if not password:
            raise Invalid(f"user {username!r} needs a password")
        user = User(username=username, password_hash=security.hash_password(password), role=role)
        session.add(user)
    elif password:
        user.password_hash = security.hash_password(password)
    user.role = role
    user.extension = extension or None
    user.queues = sorted(set(queues or []))
    if worker_id is not None:
        user.worker_id = worker_id or None
    await session.flush()
    return user, created


async def import_users(session: AsyncSession, path: Path) -> tuple[int, int]:
    """Import ``username,role,extension,queues,password`` rows (queues split by ';')."""
    created = updated = 0
    with path.open(newline="") as fh:
        for line_no, row in enumerate(csv.DictReader(fh), start=2):
            try:
                queues = [q.strip() for q in (row.get("queues") or "").split(";") if q.strip()]
                _, was_created = await upsert_user(
                    session,
                    username=(row.get("username") or "").strip(),
                    role=(row.get("role") or "agent").strip(),
                    password=row.get("password") or None,
                    extension=(row.get("extension") or "").strip() or None,
                    queues=queues,
                )
            except Invalid as exc:
                raise Invalid(f"line {line_no}: {exc.detail}") from exc
            created += was_created
            updated += not was_created
    return created, updated


async def authenticate(
    session: AsyncSession, passwords: PasswordVerifier, username: str, password: str
) -> User:
    """The active user with this username and password, else ``Unauthorized``."""
    user = await get_by_username(session, username)
    password_hash = user.password_hash if user else None
    # Only a read so far: end it, so no pooled connection waits on the hash (seconds, in a
    # storm of sign-ins). The session keeps ``user`` loaded (no expiry on commit).
    await session.commit()
    checked = await passwords.verify(password_hash, password)
    if user is None or not checked.matched or not user.active:
        # One message for both cases: do not tell which part was wrong.
        raise Unauthorized("invalid username or password")
    if checked.new_hash is not None:
        # Made with older parameters: stored again with today's (app.users.security).
        user.password_hash = checked.new_hash
        await session.commit()
    return user


def principal_from_token(key: str, token: str | None) -> Principal:
    if not token:
        raise Unauthorized("missing token")
    try:
        claims = security.read_token(key, token)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("invalid token") from exc
    return Principal(username=str(claims["sub"]), role=str(claims.get("role", "agent")))
