"""Fixtures for the systems of record: a fresh MariaDB "ERP" per test, the CRM process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.sources.config import SourcesConfig, parse_config
from tests.sources.support import (
    EXAMPLE_ENV,
    CrmProcess,
    create_mariadb,
    drop_mariadb,
    examples_config,
    readme_example,
    run_sql,
)

ERP_DATA = Path(__file__).with_name("erp_data.sql")


@pytest.fixture
async def erp_url() -> AsyncIterator[str]:
    """A MariaDB database with the README's ERP schema and a few customers."""
    url = await create_mariadb()
    try:
        await run_sql(url, readme_example("erp-schema"))
        await run_sql(url, ERP_DATA.read_text())
        yield url
    finally:
        await drop_mariadb(url)


@pytest.fixture(scope="session")
def crm() -> Iterator[CrmProcess]:
    process = CrmProcess().start()
    yield process
    process.stop()


@pytest.fixture
def examples(erp_url: str, crm: CrmProcess) -> SourcesConfig:
    """The README's two examples, as one sources file, against the test ERP and CRM."""
    return parse_config(examples_config(erp_url, crm.url), EXAMPLE_ENV)
