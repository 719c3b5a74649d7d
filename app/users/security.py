"""Password hashing (argon2) and signed tokens (JWT, HS256).

The hash is argon2id with OWASP's recommended parameters (Password Storage Cheat Sheet):
19 MiB, 2 passes, 1 lane. A verify costs 17-19 ms of CPU on one thread here (the figure
``bench.login_storm`` prints), so a storm of sign-ins leaves the other core to the pops;
argon2-cffi's default (RFC 9106's low-memory profile, 64 MiB, 3 passes, 4 lanes) cost
160-240 ms on four threads and, even at the lowest CPU priority, its memory traffic slowed the
webhooks (docs/customers.md). A stored hash with other
parameters still verifies, and is replaced by one with these at the user's next sign-in
(``check_password``). The service verifies in worker processes of low CPU priority
(``app.users.hashing``), never in the serving process. ``worker_init`` is those workers'
initializer; it lives here so that a worker imports no more than argon2 and PyJWT.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import threading
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's argon2id configuration "m=19456 (19 MiB), t=2, p=1".
MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1
_hasher = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM)


class Checked(NamedTuple):
    """A verification's outcome: whether the password matched, and a hash to store instead
    of the old one when it was made with other parameters."""

    matched: bool
    new_hash: str | None = None


@cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both failures cost the same time."""
    return _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        matched = _hasher.verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and password_hash is not None


def check_password(password_hash: str | None, password: str) -> Checked:
    """``verify_password``, plus the hash to upgrade to when ``password_hash`` matched but was
    made with parameters other than today's."""
    if not verify_password(password_hash, password):
        return Checked(False)
    assert password_hash is not None  # verify_password is False without one
    if _hasher.check_needs_rehash(password_hash):
        return Checked(True, _hasher.hash(password))
    return Checked(True)


def lower_priority() -> None:
    """Make this process (and the threads it starts) run only on CPU nobody else wants.

    Linux: ``SCHED_IDLE``, which a waking task of normal priority always preempts. Elsewhere,
    or where the policy is refused: nice 19. Either way threads started afterwards (argon2's
    lanes) inherit it.
    """
    with contextlib.suppress(OSError, AttributeError):
        os.nice(19)
    sched_idle = getattr(os, "SCHED_IDLE", None)
    if sched_idle is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, sched_idle, os.sched_param(0))


def worker_init() -> None:
    """The password worker's initializer: lowest priority, and gone with the serving process.

    A worker blocks on its task queue, which it holds both ends of: were the serving process
    killed (SIGKILL, the OOM killer), nothing would ever end it. A thread waits on the
    parent's sentinel instead and ends the worker when the parent is gone.
    """
    lower_priority()
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def exit_with_parent() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="exit-with-parent", daemon=True).start()


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
