"""Service settings, read from ``HARNESS_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    # Determinism: a seed makes ids and jitter reproducible (record/replay); None in production.
    seed: int | None = None
    model_seed: int = 7

    max_body_bytes: int = 64 * 1024
    max_task_chars: int = 8000
    max_steps: int = 8
    token_budget: int = 12000
    max_tool_result_chars: int = 4000
    retrieval_top_k: int = 3

    retry_max_attempts: int = 3
    retry_base_delay: float = 0.5
    retry_max_delay: float = 8.0
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 30.0

    job_max_attempts: int = 3
    job_lease_seconds: float = 60.0
    job_retry_delay_seconds: float = 2.0

    # Extra allow/deny rules on top of the built-in grants (JSON list in the env); an explicit
    # deny here beats every allow, e.g. {"effect": "deny", "tenant": "t1", "action": "run:create"}.
    policy_rules: list[dict[str, Any]] = Field(default_factory=list)

    rate_limit_per_key: str = "120/minute"
    rate_limit_per_tenant: str = "600/minute"

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
