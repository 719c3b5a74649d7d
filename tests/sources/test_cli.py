"""``screenpop sources check``, ``sync`` and ``outbox`` as an operator runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from app.cli import cli
from app.settings import get_settings
from tests.sources.support import EXAMPLE_ENV, CrmProcess, examples_config


@pytest.fixture
def operator(
    tmp_path: Path,
    erp_url: str,
    crm: CrmProcess,
    database_url: str,
    clean_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CliRunner]:
    """The README's examples in a sources file, the environment set as an operator would."""
    path = tmp_path / "sources.toml"
    path.write_text(examples_config(erp_url, crm.url))
    for name, value in {**EXAMPLE_ENV, "SCREENPOP_SOURCES_FILE": str(path),
                        "SCREENPOP_DATABASE_URL": database_url}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_sources_check_prints_what_each_part_maps_to(operator: CliRunner) -> None:
    result = operator.invoke(cli, ["sources", "check", "--number", "020 7946 0111"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["erp"]["parts"]["identity"]["data"]["ref"] == "E-1001"
    assert report["erp"]["parts"]["balance"]["data"]["amount"] == 250
    assert [o["ref"] for o in report["crm"]["parts"]["orders"]["data"]] == ["W-9001", "W-9000"]


def test_sync_then_outbox_list(operator: CliRunner) -> None:
    first = operator.invoke(cli, ["sync", "erp"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout.splitlines()[-1])["customers"]["added"] == 3
    again = operator.invoke(cli, ["sync", "erp", "--full"])
    assert json.loads(again.stdout.splitlines()[-1])["customers"]["unchanged"] == 3
    unknown = operator.invoke(cli, ["sync", "crm"])
    assert unknown.exit_code == 2 and "has no [sources.crm.sync] queries" in unknown.output
    listed = operator.invoke(cli, ["outbox", "list"])
    assert listed.exit_code == 0
    assert json.loads(listed.stdout.splitlines()[-1]) == {"pending": 0, "delivered": 0, "failed": 0}
    assert operator.invoke(cli, ["outbox", "retry", "msg_nope"]).exit_code == 1


def test_an_invalid_file_is_refused_naming_the_key(
    operator: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[sources.crm]\nkind = "http"\nbudget_ms = "fast"\n')
    monkeypatch.setenv("SCREENPOP_SOURCES_FILE", str(bad))
    get_settings.cache_clear()
    result = operator.invoke(cli, ["sources", "check"])
    assert result.exit_code == 2 and "sources.crm.budget_ms" in result.output
