"""Fault injectors for resilience tests: ModelClient wrappers, a DB statement failer, a dead port.

Everything here fails on purpose and counts what it saw, so a test can assert both the
outcome and how many times the dependency was actually reached.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from freezegun import freeze_time
from sqlalchemy import Engine, event

import replay
from harness.providers.base import ChatRequest, ChatResponse, ModelClient, ProviderCallError
from harness.providers.openai_client import OpenAIChatClient


@contextmanager
def frozen_clock(start: str = "2026-01-01T00:00:00Z") -> Iterator[Any]:
    """freezegun at ``start`` (the runtime's SystemClock follows it); ``.tick(...)`` moves it.

    freezegun walks every loaded module's attributes when it starts, which would import
    ``replay``'s lazily loaded submodules (pydantic models with ``datetime`` fields) while
    ``datetime`` is faked; resolving them first keeps their schemas real.
    """
    for name in replay.__all__:
        getattr(replay, name)
    with freeze_time(start, real_asyncio=True) as clock:
        yield clock


class WorkerCrash(RuntimeError):
    """Stands in for a worker dying mid-job (not a ``HarnessError``: nothing handles it)."""


class AlwaysFailingClient:
    """A provider in a hard outage: every call raises ``ProviderCallError`` and is counted."""

    def __init__(self, name: str, *, status: int = 503, retryable: bool = True) -> None:
        self.name = name
        self.status = status
        self.retryable = retryable
        self.calls: list[ChatRequest] = []

    def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls.append(request)
        raise ProviderCallError(
            f"{self.name} answered HTTP {self.status}: injected outage",
            provider=self.name,
            retryable=self.retryable,
            status=self.status,
        )


def unused_loopback_port() -> int:
    """A loopback port nothing listens on (bound, then released), so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Outage:
    """Wraps a real client; while down, calls go to a dead port through the same SDK path.

    The wrapper keeps the inner client's name, so the breaker and the audit see one provider
    that went away and came back.
    """

    def __init__(self, inner: ModelClient, *, down_after_calls: int | None = None) -> None:
        self.name = inner.name
        self._inner = inner
        self._dead = OpenAIChatClient(
            base_url=f"http://127.0.0.1:{unused_loopback_port()}/v1",
            api_key="sk-sim-outage",
            timeout=5,
            name=inner.name,
        )
        self._down_after = down_after_calls
        self._lock = threading.Lock()
        self.answered = 0
        self.refused = 0

    @property
    def is_down(self) -> bool:
        return self._down_after is not None and self.answered >= self._down_after

    def down(self) -> None:
        with self._lock:
            self._down_after = self.answered

    def up(self) -> None:
        with self._lock:
            self._down_after = None

    def complete(self, request: ChatRequest) -> ChatResponse:
        with self._lock:
            down = self.is_down
        if down:
            self.refused += 1
            return self._dead.complete(request)  # raises ProviderCallError (connection refused)
        answer = self._inner.complete(request)
        with self._lock:
            self.answered += 1
        return answer


class CallHook:
    """Wraps a client and runs ``hook(call_number, request)`` before the given calls (1-based).

    The hook may raise (a crash at a controlled point) or act (e.g. run a second worker while
    this one waits on the model, which happens outside any transaction).
    """

    def __init__(
        self, inner: ModelClient, *, on_calls: set[int], hook: Callable[[int, ChatRequest], None]
    ) -> None:
        self.name = inner.name
        self._inner = inner
        self._on_calls = set(on_calls)
        self._hook = hook
        self.calls = 0

    def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        if self.calls in self._on_calls:
            self._on_calls.discard(self.calls)
            self._hook(self.calls, request)
        return self._inner.complete(request)


@dataclass
class StatementFault:
    """Counts the statements it failed; see :func:`fail_statements`."""

    prefix: str
    failed: list[str] = field(default_factory=list)
    armed: bool = True


@contextmanager
def fail_statements(
    engine: Engine,
    prefix: str,
    *,
    when: Callable[[Any], bool] | None = None,
    times: int | None = None,
) -> Iterator[StatementFault]:
    """Make the driver fail SQL starting with ``prefix`` (and matching ``when(parameters)``).

    The error is the driver's own ``OperationalError`` raised where the driver would raise
    it, so SQLAlchemy wraps and rolls back exactly as for a real disk or network failure.
    ``times`` limits how many statements fail (all, while the block is open, when None).
    """
    fault = StatementFault(prefix=prefix)
    dbapi_error = engine.dialect.loaded_dbapi.OperationalError

    def matches(statement: str, parameters: Any) -> bool:
        if not fault.armed or not statement.lstrip().upper().startswith(prefix.upper()):
            return False
        if when is not None and not when(parameters):
            return False
        return times is None or len(fault.failed) < times

    def do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> None:
        if matches(statement, parameters):
            fault.failed.append(statement)
            raise dbapi_error("injected fault: disk I/O error")

    event.listen(engine, "do_execute", do_execute)
    event.listen(engine, "do_executemany", do_execute)
    try:
        yield fault
    finally:
        fault.armed = False
        event.remove(engine, "do_execute", do_execute)
        event.remove(engine, "do_executemany", do_execute)


def param_is(name: str, position: int, value: object) -> Callable[[Any], bool]:
    """A ``when`` for :func:`fail_statements`: one bound parameter equals ``value``.

    Named (PostgreSQL's pyformat dict) or positional (SQLite's qmark tuple), so give both.
    """

    def check(parameters: Any) -> bool:
        if isinstance(parameters, dict):
            return bool(parameters.get(name) == value)
        return len(parameters) > position and bool(parameters[position] == value)

    return check


def params_mention(*needles: str) -> Callable[[Any], bool]:
    """A ``when`` for :func:`fail_statements`: the bound parameters contain every needle."""

    def check(parameters: Any) -> bool:
        text = str(parameters)
        return all(n in text for n in needles)

    return check
