"""The sources file: the README's examples load; a bad file names the source and the key."""

from __future__ import annotations

import pytest

from app.sources.config import SourcesConfigError, parse_config
from tests.sources.support import EXAMPLE_ENV, examples_config

ENV = {**EXAMPLE_ENV, "ERP_PASSWORD": "pw"}
MINIMAL = """
[sources.crm]
kind = "http"
headers = { Authorization = "Bearer ${CRM_TOKEN}" }
[sources.crm.live]
identity = { url = "https://crm.example.com/c?phone={e164}", map = { ref = "id" } }
"""


def test_readme_examples_load_with_secrets_from_the_environment() -> None:
    config = parse_config(
        examples_config("mysql+asyncmy://u:${ERP_PASSWORD}@db/erp", "https://c"), ENV
    )
    assert config.ordered() == ["erp", "crm"]
    assert config.sources["erp"].url == "mysql+asyncmy://u:pw@db/erp"
    assert config.sources["crm"].headers["Authorization"] == f"Bearer {ENV['CRM_TOKEN']}"
    assert set(config.sources["erp"].live) == {"identity", "balance"}
    assert config.sources["erp"].needs_ref("balance") and not config.sources["erp"].needs_ref(
        "identity"
    )
    assert config.destinations_for("wrapup") == ["crm"]
    assert config.destinations["crm"].secret == ENV["CRM_WEBHOOK_SECRET"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("Bearer ${CRM_TOKEN}", "Bearer ${NOT_SET}"),
         "sources.crm.headers.Authorization: ${NOT_SET} is not set"),
        (('kind = "http"', 'kind = "ldap"'), "sources.crm.kind"),
        (("{e164}", "{phone}"), "unknown parameter(s) phone"),
        (('ref = "id"', 'ref = "items[0"'),
         "sources.crm.live.identity.map: map.ref: 'items[0' is not a JMESPath"),
        (('kind = "http"', 'kind = "http"\nbudget_ms = 0'), "sources.crm.budget_ms"),
        (('kind = "http"', 'kind = "http"\nbuget_ms = 10'), "sources.crm.buget_ms: unknown key"),
        (('kind = "http"', 'kind = "sql"'),
         "sources.crm: live.identity: a sql source's live part is a SQL string"),
    ],
)  # fmt: skip
def test_a_bad_file_names_the_source_and_the_key(change: tuple[str, str], message: str) -> None:
    with pytest.raises(SourcesConfigError) as caught:
        parse_config(MINIMAL.replace(*change), ENV)
    assert message in str(caught.value)


def test_sync_and_precedence_are_checked() -> None:
    with pytest.raises(SourcesConfigError, match="precedence: no source named erp"):
        parse_config('precedence = ["erp"]\n' + MINIMAL, ENV)
    with pytest.raises(SourcesConfigError, match="sync: only a sql source can be synced"):
        parse_config(MINIMAL + '[sources.crm.sync]\ncustomers = "SELECT 1"\n', ENV)
    with pytest.raises(SourcesConfigError, match="not valid TOML"):
        parse_config("[sources.crm\n", ENV)
