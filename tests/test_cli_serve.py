"""``screenpop serve`` refuses several workers without Redis (pops could not cross them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.settings import get_settings


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_several_workers_without_redis_are_refused(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("SCREENPOP_REDIS_URL", raising=False)
    monkeypatch.setenv("SCREENPOP_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/never.db")
    result = CliRunner().invoke(cli, ["serve", "--workers", "2", "--no-migrate"])
    assert result.exit_code == 2
    assert "SCREENPOP_REDIS_URL" in result.output
