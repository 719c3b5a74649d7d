"""Fixtures for the queues tests: the test Redis (the working day runs two instances on it)."""

from tests.live.conftest import redis_url

__all__ = ["redis_url"]
