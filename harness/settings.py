"""Service settings, read from ``HARNESS_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    rate_limit_per_key: str = "120/minute"
    rate_limit_per_tenant: str = "600/minute"

    idempotency_ttl_seconds: int = 24 * 3600
    signature_window_seconds: int = 300

    audit_checkpoint_every: int = 64
    audit_signing_key: Path | None = None
    audit_origin: str = "harness.local/audit"

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
