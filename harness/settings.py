"""Service settings, read from ``HARNESS_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

MIN_SIGNING_SECRET_CHARS = 32


class Settings(BaseSettings):
    """Everything configurable about one harness process."""

    model_config = SettingsConfigDict(env_prefix="HARNESS_", extra="forbid", frozen=True)

    data_dir: Path = Path(".harness")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file under data_dir"
    )

    provider_base_url: str = "http://127.0.0.1:8765/v1"
    provider_api_key: SecretStr = SecretStr("sk-sim-local-not-a-secret")
    provider_timeout_seconds: float = 30.0
    # Model providers this process runs, in default failover order; a tenant's routing
    # `providers` list may pick and reorder them (JSON list in the env: '["anthropic","openai"]').
    providers: list[Literal["openai", "anthropic"]] = Field(default=["openai"], min_length=1)
    anthropic_base_url: str = "http://127.0.0.1:8765"  # the SDK appends /v1/messages
    anthropic_api_key: SecretStr = SecretStr("sk-sim-local-not-a-secret")

    # Determinism: a seed makes ids and jitter reproducible (record/replay); None in production.
    seed: int | None = None
    model_seed: int = 7

    max_body_bytes: int = 64 * 1024
    # A request body must arrive in full within this many seconds (408 otherwise).
    body_read_timeout_seconds: float = Field(default=10.0, gt=0)
    max_task_chars: int = 8000
    max_steps: int = 8
    token_budget: int = 12000
    max_tool_result_chars: int = 4000
    # write_artifact content above this is refused before a human is asked (and never stored).
    max_artifact_bytes: int = Field(default=64 * 1024, gt=0)
    retrieval_top_k: int = 3

    retry_max_attempts: int = 3
    retry_base_delay: float = 0.5
    retry_max_delay: float = 8.0
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 30.0

    job_max_attempts: int = 3
    job_lease_seconds: float = 60.0
    job_retry_delay_seconds: float = 2.0
    # Backpressure (harness/jobs/backpressure.py): POST /run answers 503 + Retry-After when
    # more jobs than this are queued or leased in all, or for the caller's tenant.
    max_queue_depth: int = Field(default=10_000, ge=1)
    max_tenant_in_flight: int = Field(default=2_000, ge=1)
    shed_retry_after_seconds: int = Field(default=5, ge=1)

    # Extra allow/deny rules on top of the built-in grants (JSON list in the env); an explicit
    # deny here beats every allow, e.g. {"effect": "deny", "tenant": "t1", "action": "run:create"}.
    policy_rules: list[dict[str, Any]] = Field(default_factory=list)

    rate_limit_per_key: str = "120/minute"
    rate_limit_per_tenant: str = "600/minute"
    # Refused requests (401) per client address before the address gets 429 for the window, and
    # how many 401/403 per address and window are audited (the rest are counted in the logs).
    auth_failures_per_address: str = "30/minute"
    auth_failure_audit_per_address: str = "20/minute"
    # Bearer token for GET /metrics (separate from API keys); unset: /metrics answers 404.
    metrics_token: SecretStr | None = None

    idempotency_ttl_seconds: int = 24 * 3600
    signature_window_seconds: int = Field(default=300, gt=0)
    # HMAC secrets for X-Harness-Signature (JSON list in the env): current first, previous after,
    # so clients can roll to a new secret without a flag day. Empty: request signing is off.
    request_signing_secrets: list[SecretStr] = Field(default_factory=list)
    require_signed_requests: bool = False

    audit_checkpoint_every: int = Field(default=64, ge=1)
    # ...or when the newest checkpoint is this old (None: count only). Checked on append.
    audit_checkpoint_seconds: float | None = Field(default=300.0, gt=0)
    audit_signing_key: Path | None = None
    audit_origin: str = "harness.local/audit"

    @field_validator("request_signing_secrets")
    @classmethod
    def _long_enough(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        # A short HMAC secret can be brute-forced offline from a single captured request.
        if any(len(s.get_secret_value()) < MIN_SIGNING_SECRET_CHARS for s in secrets):
            raise ValueError(
                f"each request signing secret needs at least {MIN_SIGNING_SECRET_CHARS} characters"
            )
        return secrets

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < MIN_SIGNING_SECRET_CHARS:
            raise ValueError(f"metrics_token needs at least {MIN_SIGNING_SECRET_CHARS} characters")
        return token

    @field_validator("rate_limit_per_key", "rate_limit_per_tenant")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        from limits import parse  # lazy: the CLI start-up should not pay for the rate limiter

        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit; write e.g. '120/minute'") from None
        return value

    @field_validator("policy_rules")
    @classmethod
    def _valid_rules(cls, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from harness.errors import ConfigError
        from harness.policy import rules_from_data

        try:
            rules_from_data(rules)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return rules

    @model_validator(mode="after")
    def _signing_required_needs_a_secret(self) -> Settings:
        if self.require_signed_requests and not self.request_signing_secrets:
            raise ValueError(
                "require_signed_requests is set but request_signing_secrets is empty: "
                "set HARNESS_REQUEST_SIGNING_SECRETS to a JSON list of secrets"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'harness.db').as_posix()}"

    @property
    def workspaces_dir(self) -> Path:
        return self.data_dir / "workspaces"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def tenant_files_dir(self) -> Path:
        return self.data_dir / "tenant-files"


class _HermeticSettings(Settings):
    """Settings from explicit values and defaults only; ``HARNESS_*`` variables are not read."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def settings_without_environment(**values: object) -> Settings:
    """Settings from ``values`` and the defaults, ignoring the environment (record/replay use this)."""
    return _HermeticSettings(**values)  # type: ignore[arg-type]
