"""``screenpop serve`` refuses several workers without Redis (pops could not cross them), and
an invalid routing file before it starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


def test_a_bad_routing_file_stops_serve_naming_the_key(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rules = tmp_path / "routing.toml"
    rules.write_text("[priority]\ntiers = { gold = 5 }\n")
    monkeypatch.setenv("SCREENPOP_ROUTING_FILE", str(rules))
    monkeypatch.setenv("SCREENPOP_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/never.db")
    result = CliRunner().invoke(cli, ["serve", "--no-migrate"])
    assert result.exit_code == 2
    assert "SCREENPOP_ROUTING_FILE" in result.output and "priority.tiers" in result.output
    assert not (tmp_path / "never.db").exists()
