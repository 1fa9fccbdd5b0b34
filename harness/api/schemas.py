"""Request and response bodies of the public API. Unknown fields are refused (no mass assignment)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: StrictStr = Field(min_length=1, description="What the harness should do")
    model: StrictStr | None = Field(
        default=None, description="A model the tenant may use; default if omitted"
    )
    tools: list[StrictStr] | None = Field(
        default=None, description="Subset of the tenant's tools; all if omitted"
    )


class RunAccepted(BaseModel):
    run_id: str
    status: str
    model: str
    tools: list[str]
    links: dict[str, str]


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: StrictStr = Field(min_length=1, max_length=64)
    decision: Literal["approve", "reject"]
    reason: StrictStr = Field(min_length=1, max_length=2000)
    approval_id: StrictStr = Field(
        min_length=1,
        max_length=64,
        description="The pending approval's `id`, as shown in `pending_approval` of GET /runs/{run_id}",
    )
    args_sha256: StrictStr = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="The pending approval's `args_sha256` as shown: the digest of the exact arguments"
        " decided on. A decision naming anything but the action pending now is refused with 409.",
    )


class RunView(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    status: str
    transitions: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    pending_approval: dict[str, Any] | None
    artifacts: list[dict[str, Any]]
