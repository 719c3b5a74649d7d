"""Operations tests share the live suite's Redis fixture."""

from tests.live.conftest import redis_url

__all__ = ["redis_url"]
