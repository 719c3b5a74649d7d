"""Sign-in, tokens and roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.users import security
from app.users.models import User
from tests.conftest import TEST_JWT_SECRET, add_user


async def test_login_returns_a_token_that_authenticates(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    await add_user(clean_engine, "alice", password="s3cret-pass", extension="201", queues=["sales"])
    response = await client.post(
        "/api/auth/login", json={"username": "alice", "password": "s3cret-pass"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["role"] == "agent" and body["extension"] == "201" and body["queues"] == ["sales"]
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json() == {"username": "alice", "role": "agent"}


async def test_wrong_password_and_unknown_user_get_the_same_401(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    await add_user(clean_engine, "alice", password="s3cret-pass")
    wrong = await client.post("/api/auth/login", json={"username": "alice", "password": "nope"})
    unknown = await client.post("/api/auth/login", json={"username": "zed", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "password" in wrong.json()["detail"] and "username" in wrong.json()["detail"]


async def test_malformed_login_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/login", json={"username": "alice"})
    assert response.status_code == 422
    assert "password" in response.json()["detail"]


async def test_forged_and_expired_tokens_are_refused(client: httpx.AsyncClient) -> None:
    forged = jwt.encode(
        {"sub": "alice", "role": "admin", "exp": 9999999999},
        "another-key-that-is-long-enough-for-hs256",
    )
    response = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "invalid token"
    expired = jwt.encode(
        {"sub": "alice", "exp": datetime.now(UTC) - timedelta(minutes=1)}, TEST_JWT_SECRET
    )
    response = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired"


def test_password_hashes_are_argon2_and_verify() -> None:
    hashed = security.hash_password("correct horse")
    # OWASP's argon2id configuration: 19 MiB, 2 passes, 1 lane.
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert security.verify_password(hashed, "correct horse")
    assert not security.verify_password(hashed, "wrong horse")
    assert not security.verify_password(None, "anything")


async def test_failed_sign_ins_are_limited_per_username_with_retry_after(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    await add_user(clean_engine, "alice", password="s3cret-pass")
    for _ in range(5):
        wrong = await client.post("/api/auth/login", json={"username": "alice", "password": "no"})
        assert wrong.status_code == 401
    limited = await client.post(
        "/api/auth/login", json={"username": "alice", "password": "s3cret-pass"}
    )
    assert limited.status_code == 429
    assert limited.json()["error"] == "too_many_requests"
    assert 0 < int(limited.headers["retry-after"]) <= 60
    # Another username from the same address is not limited yet (20 per address).
    await add_user(clean_engine, "bob", password="bobs-password")
    ok = await client.post("/api/auth/login", json={"username": "bob", "password": "bobs-password"})
    assert ok.status_code == 200


async def test_failed_sign_ins_are_limited_per_address(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    await add_user(clean_engine, "alice", password="s3cret-pass")
    for i in range(20):
        wrong = await client.post("/api/auth/login", json={"username": f"u{i}", "password": "no"})
        assert wrong.status_code == 401
    limited = await client.post(
        "/api/auth/login", json={"username": "alice", "password": "s3cret-pass"}
    )
    assert limited.status_code == 429 and "retry-after" in limited.headers


async def test_a_hash_with_older_parameters_is_upgraded_at_the_next_sign_in(
    client: httpx.AsyncClient, clean_engine: AsyncEngine
) -> None:
    await add_user(clean_engine, "alice", password="s3cret-pass")
    # As stored before: argon2-cffi's default profile (64 MiB, 3 passes, 4 lanes).
    old = PasswordHasher().hash("s3cret-pass")
    async with clean_engine.begin() as conn:
        await conn.execute(update(User).where(User.username == "alice").values(password_hash=old))
    wrong = await client.post("/api/auth/login", json={"username": "alice", "password": "no"})
    assert wrong.status_code == 401
    assert await _stored_hash(clean_engine, "alice") == old, "a failed sign-in changes nothing"
    signed = await client.post(
        "/api/auth/login", json={"username": "alice", "password": "s3cret-pass"}
    )
    assert signed.status_code == 200
    upgraded = await _stored_hash(clean_engine, "alice")
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert security.verify_password(upgraded, "s3cret-pass")
    again = await client.post(
        "/api/auth/login", json={"username": "alice", "password": "s3cret-pass"}
    )
    assert again.status_code == 200
    assert await _stored_hash(clean_engine, "alice") == upgraded, "upgraded once"


async def _stored_hash(engine: AsyncEngine, username: str) -> str:
    async with engine.connect() as conn:
        value = await conn.scalar(select(User.password_hash).where(User.username == username))
    assert isinstance(value, str)
    return value
