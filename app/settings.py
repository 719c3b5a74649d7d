"""Service settings, read from the environment with the ``SCREENPOP_`` prefix."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "xxx"}
DEFAULT_JWT_FILE = Path(".screenpop-jwt-secret")


class Settings(BaseSettings):
    """Every setting in the README's configuration table, plus a few operational knobs."""

    model_config = SettingsConfigDict(env_prefix="SCREENPOP_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./screenpop.db"
    redis_url: str | None = None
    # Namespace for the hub's Redis channels: instances that share one must share a prefix.
    redis_prefix: str = "screenpop"
    webhook_secret: SecretStr | None = None
    jwt_secret: SecretStr | None = None
    jwt_ttl_s: int = 12 * 3600
    pop_budget_ms: int = 50
    # Agents' ack / seen receipts are written in batches, within this long of arriving.
    receipt_flush_ms: int = Field(default=250, ge=1)
    default_region: str = "GB"
    public_url: str = "http://127.0.0.1:8000"
    dev: bool = False
    # Set by `serve --demo`: demo users exist and the call simulator runs in the service.
    demo: bool = False
    # Demo mode (app/calls/demo_centre.py): an offer nobody answers rings out to the next agent
    # after this long; demo_speed N plays the simulated callers and agents N times faster.
    demo_ring_timeout_s: float = Field(default=20.0, gt=0, le=3600)
    demo_speed: float = Field(default=1.0, gt=0, le=1000)

    twilio_auth_token: SecretStr | None = None
    telnyx_public_key: SecretStr | None = None
    vonage_signature_secret: SecretStr | None = None
    amazon_connect_api_key: SecretStr | None = None
    kamailio_token: SecretStr | None = None
    chatwoot_token: SecretStr | None = None
    lookup_api_key: SecretStr | None = None

    # Systems of record (README, "Systems of record"): the TOML file of sources/destinations.
    sources_file: Path | None = None
    # Routing hints (docs/routing.md): priorities, account manager, queues; unset: defaults.
    routing_file: Path | None = None

    asterisk_ami_url: str | None = None
    freeswitch_esl_url: str | None = None

    # Roles allowed to see money fields (balance, credit limit) in pops and profiles.
    balance_roles: list[str] = Field(default_factory=lambda: ["agent", "supervisor", "admin"])
    timezone: str = "Europe/London"
    max_body_bytes: int = 64 * 1024
    log_json: bool = True
    log_level: str = "INFO"
    # OpenTelemetry traces over OTLP/HTTP (e.g. http://otel-collector:4318); unset: no traces.
    otlp_endpoint: str | None = None
    # Share of traces kept (a caller's sampled traceparent is always followed).
    trace_sample_ratio: float = Field(default=1.0, ge=0, le=1)
    db_pool_size: int = 10
    # permessage-deflate on websockets: less bandwidth for remote agents, CPU on every frame.
    ws_compression: bool = False
    # Websocket keepalive pings by uvicorn (0 = none): a connection that misses a pong closes.
    ws_ping_interval_s: float = Field(default=20.0, ge=0)
    # Linux: a connection whose peer acknowledges nothing (a client that stopped reading, a
    # dead network) for this long is aborted by the kernel (TCP_USER_TIMEOUT; 0 = off).
    tcp_user_timeout_s: float = Field(default=10.0, ge=0)
    # Seconds a request waits for a pooled connection before answering 503 (overloaded).
    db_pool_timeout_s: float = 5.0
    # PostgreSQL: event writes commit without waiting for the disk (the pop goes out at
    # once) and the PBX's answer waits until they are on disk, flushed for many at a time
    # (app/calls/group_commit.py). False: each write waits for its own flush.
    group_commit: bool = True
    # Over a working day: a call with no event for this long is closed (app.calls.expiry); an
    # agent with no open page and no call for this long is logged out (app.queues.timeouts);
    # both are checked every sweep_interval_s.
    call_max_idle_s: int = Field(default=14400, ge=1)
    agent_offline_s: int = Field(default=120, ge=1)
    sweep_interval_s: float = Field(default=5.0, gt=0)
    # Insights: a declined offer is not suggested to that customer again for this many days;
    # a scheduled `train --since` refresh inside the service every N seconds (0 = off).
    decline_suppress_days: int = 90
    insights_refresh_s: int = 0
    # Reports (docs/reports.md): a customer defects once this many of their usual intervals
    # between purchases have passed since their last purchase without a new one.
    defection_intervals: float = Field(default=3.0, gt=0, le=100)
    # Seconds between reads of the users' active flag, role and queues (app/users/access.py):
    # a deactivated or demoted user loses access within this time.
    users_refresh_s: float = Field(default=5.0, gt=0, le=10)
    # Failed sign-ins per minute before 429 (app/users/login_limits.py), per instance.
    login_failures_per_user: int = Field(default=5, ge=1)
    login_failures_per_address: int = Field(default=20, ge=1)

    @field_validator(
        "webhook_secret",
        "jwt_secret",
        "twilio_auth_token",
        "vonage_signature_secret",
        "amazon_connect_api_key",
        "kamailio_token",
        "chatwoot_token",
        "lookup_api_key",
        mode="after",
    )
    @classmethod
    def _refuse_placeholders(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("refusing a placeholder secret; set a real random value")
        if value is not None and not value.get_secret_value():
            return None
        return value

    def jwt_key(self) -> str:
        """The token signing key: the setting, else one generated once per install."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        return _install_jwt_secret(DEFAULT_JWT_FILE)


@lru_cache(maxsize=8)
def _install_jwt_secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
