"""Request and response bodies of the public API.

Every request body derives from :class:`RequestBody`: unknown fields are refused (no mass
assignment, and the single place that refuses a model or tool smuggled under another name),
and every field passes through :func:`harness.api.ingress.admit` (unstorable characters
refused, secrets redacted) before a route sees it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from harness.api.ingress import admit


class RequestBody(BaseModel):
    """Base of every request body: extra fields forbidden, each field admitted through the ingress."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _admit(cls, value: Any) -> Any:
        return admit(value)


class RunRequest(RequestBody):

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


class ApproveRequest(RequestBody):

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
