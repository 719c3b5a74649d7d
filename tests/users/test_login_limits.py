"""The sliding window of failed sign-ins, on a clock the test moves."""

from __future__ import annotations

from app.users.login_limits import LoginLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_oldest_failure_ageing_out_lets_the_user_try_again() -> None:
    clock = Clock()
    limiter = LoginLimiter(per_user=3, per_address=100, window_s=60, clock=clock)
    for step in range(3):
        assert limiter.retry_after("alice", "10.0.0.1") == 0
        limiter.failed("alice", "10.0.0.1")
        clock.now += 10 * (step + 1) / 10
    # Failures at 1000, 1001, 1003; now 1006: the first ages out at 1060.
    assert limiter.retry_after("alice", "10.0.0.1") == 54
    clock.now = 1060.5
    assert limiter.retry_after("alice", "10.0.0.1") == 0


def test_a_success_clears_the_username_but_not_the_address() -> None:
    clock = Clock()
    limiter = LoginLimiter(per_user=2, per_address=3, window_s=60, clock=clock)
    limiter.failed("alice", "10.0.0.1")
    limiter.failed("alice", "10.0.0.1")
    assert limiter.retry_after("alice", "10.0.0.2") > 0
    limiter.succeeded("alice")
    assert limiter.retry_after("alice", "10.0.0.2") == 0
    limiter.failed("bob", "10.0.0.1")
    assert limiter.retry_after("carol", "10.0.0.1") > 0
