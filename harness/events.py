"""Typed trace events the harness emits, and the sinks that receive them.

The default sink drops everything; record/replay installs a collecting sink. Events carry
JSON-ready values only, so a trace never depends on a library's ``repr``.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class PromptSent:
    run_id: str
    call: int
    provider: str
    model: str
    temperature: float
    seed: int
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    guard: list[dict[str, Any]]


@dataclass(frozen=True)
class ModelAnswered:
    run_id: str
    call: int
    provider: str
    content: str | None
    tool_calls: list[dict[str, Any]]
    usage: dict[str, int]


@dataclass(frozen=True)
class RetryScheduled:
    run_id: str
    call: int
    provider: str
    attempt: int
    error: str
    sleep_seconds: float


@dataclass(frozen=True)
class ToolCalled:
    run_id: str
    seq: int
    name: str
    args: dict[str, Any]
    outcome: str
    result_sha256: str


@dataclass(frozen=True)
class TransitionRecorded:
    run_id: str
    seq: int
    from_status: str
    to_status: str
    reason: str
    actor: str  # who made the transition: a key id, "orchestrator" or "cli"


@dataclass(frozen=True)
class AuditAppended:
    seq: int
    action: str
    target: str


@dataclass(frozen=True)
class ArtifactCommitted:
    run_id: str
    path: str
    size: int
    sha256: str


Event = (
    PromptSent
    | ModelAnswered
    | RetryScheduled
    | ToolCalled
    | TransitionRecorded
    | AuditAppended
    | ArtifactCommitted
)


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...


class NullSink:
    """The production default: events are dropped (logs and metrics carry the signal)."""

    def emit(self, event: Event) -> None:
        return None


@dataclass
class CollectingSink:
    """Keeps every event in order; thread-safe."""

    events: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def emit(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def of_type(self, kind: type[Event]) -> list[Any]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]


def event_to_dict(event: Event) -> dict[str, Any]:
    return {"type": type(event).__name__, **asdict(event)}
