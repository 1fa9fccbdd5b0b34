"""The provider boundary: a small ``ModelClient`` protocol and the values that cross it."""

from __future__ import annotations

from collections.abc import Mapping
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
    stream: bool = False  # consume the answer as a stream (a route setting); same result either way


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

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, provider=provider, status=status)
        self.provider = provider
        self.retryable = retryable
        self.upstream_status = status
        self.retry_after = retry_after  # seconds the provider asked us to wait (Retry-After), if any


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The provider's requested wait: ``retry-after-ms`` wins over ``retry-after`` (seconds).

    HTTP-date values and garbage are ignored (None): the retry policy's own backoff applies.
    """
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) / scale
        except ValueError:
            continue
        if 0 <= value < float("inf"):  # NaN fails both comparisons
            return round(value, 3)
    return None
