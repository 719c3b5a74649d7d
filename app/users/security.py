"""Password hashing (argon2) and signed tokens (JWT, HS256).

Verifying a password costs tens of milliseconds of CPU: ``check_password`` runs it on a small
thread pool of its own (argon2 releases the GIL), so sign-ins never stall the event loop and
at most ``HASH_THREADS`` run at once; the others wait their turn.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both failures cost the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


HASH_THREADS = 1
_executor = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="argon2")


async def check_password(password_hash: str | None, password: str) -> bool:
    """``verify_password`` on the hashing threads, off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, verify_password, password_hash, password)


def issue_token(key: str, *, username: str, role: str, ttl_s: int) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": username,
        "role": role,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_s),
    }
    return jwt.encode(claims, key, algorithm="HS256")


def read_token(key: str, token: str) -> dict[str, Any]:
    """Decode and check a token; raises ``jwt.InvalidTokenError`` when forged or expired."""
    return jwt.decode(token, key, algorithms=["HS256"], options={"require": ["sub", "exp"]})
