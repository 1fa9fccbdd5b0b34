"""``scenario.yaml``: the input of one golden. Validated with pydantic; errors name file, field and fix."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from replay.errors import FormatVersionError, ScenarioError
from replay.sim_script import SimScript, parse_script

SCENARIO_FORMAT_VERSION = 1

# Settings a scenario may override; everything else stays at the harness defaults.
OVERRIDABLE_SETTINGS = frozenset(
    {
        "retry_max_attempts",
        "retry_base_delay",
        "retry_max_delay",
        "breaker_failure_threshold",
        "breaker_reset_seconds",
        "max_steps",
        "token_budget",
        "max_task_chars",
        "max_body_bytes",
        "job_max_attempts",
        "rate_limit_per_key",
        "rate_limit_per_tenant",
        "model_seed",
        "max_tool_result_chars",
        "retrieval_top_k",
        "policy_rules",
        "request_signing_secrets",
        "require_signed_requests",
        "signature_window_seconds",
    }
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DocumentSpec(_Model):
    title: str
    body: str


class TenantSpec(_Model):
    id: str
    name: str | None = None
    routing: dict[str, Any] | None = None
    keys: dict[str, list[str]] = Field(description="key name -> roles")
    principals: dict[str, str] = Field(
        default_factory=dict, description="key name -> the principal holding it (default: the key name)"
    )
    files: dict[str, str] = Field(default_factory=dict, description="workspace fixture files")
    symlinks: dict[str, str] = Field(
        default_factory=dict, description="workspace symlinks: link path -> target, written verbatim"
    )
    documents: list[DocumentSpec] = Field(default_factory=list)


class StepSpec(_Model):
    op: Literal["run", "approve", "reject", "status", "artifact", "raw", "replay"]
    sign: bool = Field(default=False, description="sign with the first request_signing_secrets entry")
    of: int | None = Field(default=None, ge=0, description="replay: the step whose exact request to resend")
    as_: str | None = Field(default=None, alias="as", description="key name making the request")
    body: dict[str, Any] | None = None
    raw_body: str | None = None
    method: Literal["GET", "POST"] | None = None
    path: str | None = None
    run: str | None = Field(default=None, description="a name saved by an earlier run step")
    artifact: str | None = None
    reason: str = "reviewed"
    headers: dict[str, str] = Field(default_factory=dict)
    save: str | None = Field(default=None, description="remember this run id under a name")
    expect: int = Field(ge=100, le=599, description="expected HTTP status")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Scenario(_Model):
    format_version: int
    description: str
    seed: int = 7
    start_time: datetime
    settings: dict[str, Any] = Field(default_factory=dict)
    tenants: list[TenantSpec] = Field(min_length=1)
    model_script: dict[str, Any]
    # The provider clients the harness runs, in default failover order (a tenant's routing
    # `providers` picks among them); one simulator answers both wires.
    providers: list[Literal["openai", "anthropic"]] = Field(default=["openai"], min_length=1)
    steps: list[StepSpec] = Field(min_length=1)

    @field_validator("settings")
    @classmethod
    def _known_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - OVERRIDABLE_SETTINGS)
        if unknown:
            raise ValueError(
                f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(OVERRIDABLE_SETTINGS))}"
            )
        return value

    @field_validator("start_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("start_time needs a timezone, e.g. 2026-01-01T09:00:00Z")
        return value

    def sim_script(self, source: str) -> SimScript:
        return parse_script(self.model_script, source=f"{source}: model_script")


def load_scenario(path: Path) -> Scenario:
    """Parse and validate ``path``; every problem names the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping at the top level")
    version = data.get("format_version")
    if version != SCENARIO_FORMAT_VERSION:
        raise FormatVersionError(
            f"{path}: format_version {version!r} is not {SCENARIO_FORMAT_VERSION}; "
            f"rewrite it in format {SCENARIO_FORMAT_VERSION} (see docs/scenario-format.md) "
            f"and re-record with `harness-replay record {path.parent.name}`"
        )
    try:
        scenario = Scenario.model_validate(data)
        scenario.sim_script(str(path))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ScenarioError(f"{path}: {problems}") from None
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    names = {k for t in scenario.tenants for k in t.keys}
    for i, step in enumerate(scenario.steps):
        if step.as_ is not None and step.as_ not in names:
            raise ScenarioError(
                f"{path}: steps.{i}.as: no key named {step.as_!r} (keys: {', '.join(sorted(names))})"
            )
    return scenario
