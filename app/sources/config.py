"""The systems-of-record file (``SCREENPOP_SOURCES_FILE``, TOML): read, ``${NAME}``, validate.

``load_config(path)`` returns a ``SourcesConfig`` or raises ``SourcesConfigError`` whose
message names the source (or destination) and the key at fault. ``${NAME}`` anywhere in a
string value is replaced by the environment variable ``NAME`` (unset: an error), so secrets
stay out of the file. The keys are documented in the README ("Systems of record").
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# The named parameters a query or URL template may use (DESIGN.md, "Systems of record").
PARAMETERS = ("e164", "digits", "national", "last9", "ref", "account_ref", "since")
# Result columns of the parts the pop knows; any other part name is shown as given.
PART_COLUMNS: dict[str, tuple[str, ...]] = {
    "identity": (
        "ref", "name", "email", "customer_type", "language", "account_manager",
        "credit_limit", "marketing_ok",
    ),
    "balance": ("amount", "currency", "overdue", "as_of"),
    "orders": ("ref", "ordered_at", "total", "currency", "status"),
    "loyalty": ("programme", "tier", "points", "since"),
}  # fmt: skip
Event = Literal["wrapup"]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SQL_PARAM = re.compile(r"(?<![:\w]):(\w+)")
_URL_PARAM = re.compile(r"\{(\w+)\}")


class SourcesConfigError(ValueError):
    """The sources file cannot be used; the message names the source and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_params(text: str, found: list[str]) -> str:
    unknown = sorted(set(found) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; use {', '.join(PARAMETERS)}")
    return text


def sql_parameters(query: str) -> set[str]:
    """The named parameters (``:name``) a SQL query uses."""
    return set(_SQL_PARAM.findall(query))


def url_parameters(template: str) -> set[str]:
    """The named parameters (``{name}``) a URL template uses."""
    return set(_URL_PARAM.findall(template))


class HttpQuery(_Strict):
    """One live part from an HTTP source: a URL template and a JMESPath mapping.

    ``items`` (optional) selects a list in the response; ``map`` is then applied to each
    element (one row each). Without it, ``map`` applies to the whole response (one row).
    """

    url: str
    map: dict[str, str]
    items: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"url {value!r} must start with http:// or https://")
        return _check_params(value, _URL_PARAM.findall(value))

    @field_validator("map")
    @classmethod
    def _map(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("map needs at least one column")
        for column, expression in value.items():
            _compile(expression, f"map.{column}")
        return value

    @field_validator("items")
    @classmethod
    def _items(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value, "items")
        return value

    def parameters(self) -> set[str]:
        return url_parameters(self.url)


def _compile(expression: str, key: str) -> None:
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"{key}: {expression!r} is not a JMESPath expression ({reason})") from None


class SyncQueries(_Strict):
    """``[sources.NAME.sync]``: incremental reads by ``:since`` into screenpop's database."""

    schedule_s: int = Field(default=0, ge=0)
    batch_size: int = Field(default=500, ge=1, le=50_000)
    customers: str | None = None
    orders: str | None = None
    balances: str | None = None
    loyalty: str | None = None

    @field_validator("customers", "orders", "balances", "loyalty")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        return None if value is None else _check_params(value, _SQL_PARAM.findall(value))

    def queries(self) -> dict[str, str]:
        """Entity -> query, in the order sync runs them (customers before what refers to them)."""
        found = {
            "customers": self.customers,
            "orders": self.orders,
            "balances": self.balances,
            "loyalty": self.loyalty,
        }
        return {entity: query for entity, query in found.items() if query}


class Source(_Strict):
    """``[sources.NAME]``: a system of record asked live at the call's first sight."""

    kind: Literal["sql", "http"]
    url: str | None = None
    budget_ms: int = Field(default=300, ge=1, le=60_000)
    # A part still missing after this long is given up (and counts against the breaker).
    timeout_ms: int = Field(default=2000, ge=1, le=120_000)
    cache_s: float = Field(default=30.0, ge=0)
    breaker_failures: int = Field(default=3, ge=1)
    breaker_open_s: float = Field(default=30.0, ge=0)
    headers: dict[str, str] = Field(default_factory=dict)
    live: dict[str, str | HttpQuery] = Field(default_factory=dict)
    sync: SyncQueries | None = None

    @model_validator(mode="after")
    def _by_kind(self) -> Source:
        for part, query in self.live.items():
            if not _NAME.match(part):
                raise ValueError(f"live.{part}: a part name is letters, digits, _ or -")
            if self.kind == "sql" and not isinstance(query, str):
                raise ValueError(f"live.{part}: a sql source's live part is a SQL string")
            if self.kind == "http" and not isinstance(query, HttpQuery):
                raise ValueError(f"live.{part}: an http source's live part is {{ url, map }}")
            if isinstance(query, str):
                try:
                    _check_params(query, _SQL_PARAM.findall(query))
                except ValueError as exc:
                    raise ValueError(f"live.{part}: {exc}") from None
        if self.kind == "sql":
            if not self.url:
                raise ValueError("url: a sql source needs a database URL")
            if "+" not in self.url.split("://", 1)[0]:
                raise ValueError(
                    f"url: {self.url.split('://', 1)[0]!r} is not an async driver URL "
                    "(postgresql+asyncpg, mysql+asyncmy, sqlite+aiosqlite)"
                )
        elif self.sync is not None:
            raise ValueError("sync: only a sql source can be synced")
        if self.timeout_ms < self.budget_ms:
            raise ValueError("timeout_ms: must be at least budget_ms")
        return self

    def needs_ref(self, part: str) -> bool:
        query = self.live[part]
        names = sql_parameters(query) if isinstance(query, str) else query.parameters()
        return "ref" in names


class Destination(_Strict):
    """``[destinations.NAME]``: where each activity is journaled, from the outbox."""

    kind: Literal["http", "sql"]
    url: str
    secret: str | None = None
    # sql: an INSERT with named parameters (see the README for the names).
    statement: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    events: list[Event] = Field(default_factory=lambda: list[Event](["wrapup"]))
    timeout_ms: int = Field(default=5000, ge=1)
    max_attempts: int = Field(default=50, ge=1)
    retry_initial_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _by_kind(self) -> Destination:
        if self.kind == "http" and not self.url.startswith(("http://", "https://")):
            raise ValueError("url: must start with http:// or https://")
        if self.kind == "sql" and not self.statement:
            raise ValueError("statement: a sql destination needs an INSERT statement")
        return self


class SourcesConfig(_Strict):
    """The whole file. ``precedence`` orders sources (first wins when two give one part);
    sources it does not name follow in file order."""

    precedence: list[str] = Field(default_factory=list)
    sources: dict[str, Source] = Field(default_factory=dict)
    destinations: dict[str, Destination] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names(self) -> SourcesConfig:
        for group in ("sources", "destinations"):
            for name in getattr(self, group):
                if not _NAME.match(name):
                    raise ValueError(f"{group}.{name}: a name is letters, digits, _ or -")
        unknown = [name for name in self.precedence if name not in self.sources]
        if unknown:
            raise ValueError(f"precedence: no source named {', '.join(unknown)}")
        return self

    def ordered(self) -> list[str]:
        """Source names, highest precedence first."""
        rest = [name for name in self.sources if name not in self.precedence]
        return [*self.precedence, *rest]

    def destinations_for(self, event: str) -> list[str]:
        return [name for name, dest in self.destinations.items() if event in dest.events]


def substitute(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """``${NAME}`` in every string of a parsed TOML document, from ``env``."""
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise SourcesConfigError(f"{path}: ${{{name}}} is not set in the environment")
            return env[name]

        return _ENV.sub(one, value)
    if isinstance(value, dict):
        return {k: substitute(v, env, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


_UNION_TAGS = {"str", "HttpQuery"}


def _where(error: Mapping[str, Any]) -> str:
    return ".".join(
        str(part)
        for part in error["loc"]
        if not str(part).startswith("function-") and str(part) not in _UNION_TAGS
    )


def parse_config(text: str, env: Mapping[str, str] | None = None) -> SourcesConfig:
    """Validate a sources document (TOML text)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SourcesConfigError(f"not valid TOML: {exc}") from None
    data = substitute(raw, os.environ if env is None else env)
    try:
        return SourcesConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        errors = exc.errors()
        # A live part is a string or a table: report the branch that fits what was written.
        if any(e["type"] != "string_type" for e in errors):
            errors = [e for e in errors if e["type"] != "string_type"]
        for error in errors:
            where = _where(error)
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{where}: {message}" if where else message)
        raise SourcesConfigError("; ".join(dict.fromkeys(problems))) from None


def load_config(path: Path, env: Mapping[str, str] | None = None) -> SourcesConfig:
    """Read and validate ``SCREENPOP_SOURCES_FILE``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourcesConfigError(f"{path}: {exc.strerror or exc}") from None
    return parse_config(text, env)
