"""Password verification in a worker process of the lowest CPU priority.

An argon2 verify (``app.users.security``) costs tens of milliseconds of CPU.
Run in the serving process, even on a thread of its own, those threads get the cores on equal
terms with the event loop, so a storm of sign-ins delays every pop and webhook answer. Here
they run in a process pool whose worker is ``SCHED_IDLE`` (Linux; nice 19 elsewhere): the
kernel gives it only CPU that the serving process, the database and everything else of normal
priority leave idle, and preempts it the moment the event loop wakes up. A storm makes
sign-ins slower, not pops.

The pool belongs to the lifespan (one per serving process, so one per ``serve --workers``
worker); its worker starts on the first sign-in, from a fork server (never a fork of the
serving process with its threads and sockets), and is shut down with the app. A worker that
dies (killed, out of memory) is replaced at the next sign-in; a worker whose serving process
is killed ends too. At most ``max_waiting`` verifications wait at once; beyond that a sign-in
is answered 503 ``overloaded`` with ``Retry-After`` rather than queued without bound.

As with any multiprocessing start method but fork, the worker imports the serving program's
main module (``app.cli`` for ``screenpop serve``): a program that embeds the app keeps its
start-up code under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from app.errors import Overloaded
from app.users import security

log = logging.getLogger(__name__)

# One worker: sign-ins queue for one core and the other stays with the pops.
WORKERS = 1
MAX_WAITING = 200


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # The fork server imports argon2 once; each worker forked from it starts warm.
        ctx.set_forkserver_preload(["app.users.security"])
        return ctx
    return multiprocessing.get_context("spawn")


class PasswordVerifier:
    """``verify`` runs ``security.check_password`` in the low-priority worker pool."""

    def __init__(self, workers: int = WORKERS, max_waiting: int = MAX_WAITING) -> None:
        self.workers = workers
        self.max_waiting = max_waiting
        self.waiting = 0
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=_context(), initializer=security.worker_init
            )
        return self._pool

    async def verify(self, password_hash: str | None, password: str) -> security.Checked:
        """Whether ``password`` matches ``password_hash`` (None: an unknown user, no match
        after the same work), with the upgraded hash to store when there is one. Raises
        ``Overloaded`` when too many sign-ins wait already."""
        if self._closed:
            raise Overloaded("the server is shutting down; retry")
        if self.waiting >= self.max_waiting:
            raise Overloaded("too many sign-ins at once; retry")
        self.waiting += 1
        try:
            return await self._run(password_hash, password)
        finally:
            self.waiting -= 1

    async def _run(self, password_hash: str | None, password: str) -> security.Checked:
        for _ in range(2):
            pool = self._executor()
            try:
                # Submitted from a thread: the first submit starts the fork server and the
                # worker, which blocks the caller for a few hundred ms.
                future = await asyncio.to_thread(
                    pool.submit, security.check_password, password_hash, password
                )
                return await asyncio.wrap_future(future)
            except BrokenProcessPool:
                # The worker died (the OOM killer, an operator's kill): a new pool, once.
                log.warning("password worker died; starting a new one")
                if self._pool is pool:
                    self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
        raise Overloaded("password verification is restarting; retry")

    async def close(self) -> None:
        """Stop the worker (a verification in progress finishes first)."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
