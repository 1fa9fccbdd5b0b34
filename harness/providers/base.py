"""The provider boundary: a small ``ModelClient`` protocol and the values that cross it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.errors import ProviderError


@dataclass(frozen=True)
class ToolCallRequest:
    id: str
    name: str
    arguments: str  # raw JSON text, as the model produced it

    def to_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    temperature: float
    seed: int


@dataclass(frozen=True)
class ChatResponse:
    content: str | None
    tool_calls: tuple[ToolCallRequest, ...]
    finish_reason: str
    usage: dict[str, int] = field(default_factory=dict)


class ModelClient(Protocol):
    """One provider. Implementations never retry: the resilience layer does, visibly."""

    name: str

    def complete(self, request: ChatRequest) -> ChatResponse: ...


class ProviderCallError(ProviderError):
    """One failed attempt; ``retryable`` says whether the resilience layer may try again."""

    def __init__(self, message: str, *, provider: str, retryable: bool, status: int | None = None):
        super().__init__(message, provider=provider, status=status)
        self.provider = provider
        self.retryable = retryable
        self.upstream_status = status
