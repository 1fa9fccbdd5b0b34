"""Retry with seeded jitter, a circuit breaker per provider, and failover across providers.

Guardrails (guard, redaction, budget) sit around this layer in the orchestrator, so a
fallback answer passes exactly the same checks as a primary one.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from harness.clock import Clock, Sleeper
from harness.errors import CircuitOpen, ProviderError
from harness.observability import (
    PROVIDER_CALLS,
    PROVIDER_LATENCY,
    PROVIDER_RETRIES,
    set_breaker_state,
    span,
)
from harness.providers.base import ChatRequest, ChatResponse, ModelClient, ProviderCallError


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``reset`` lets exactly one probe through.

    While half-open, the first caller of :meth:`allow` takes the probe and every other caller
    is refused until that probe is settled: a success closes the breaker, a failure (or an
    abandoned probe) re-opens it for another ``reset``.
    """

    def __init__(self, *, clock: Clock, threshold: int, reset_seconds: float) -> None:
        self._clock = clock
        self._threshold = threshold
        self._reset = timedelta(seconds=reset_seconds)
        self._failures = 0
        self._opened_at: datetime | None = None
        self._probing = False
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock.now() - self._opened_at >= self._reset:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether this caller may call the provider now (taking the one half-open probe)."""
        with self._lock:
            state = self._state_locked()
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.OPEN or self._probing:
                return False
            self._probing = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self._threshold:
                self._opened_at = self._clock.now()
            self._probing = False

    def abandon(self) -> None:
        """A call ended without an answer or a provider error (e.g. a crash): re-arm the probe."""
        with self._lock:
            if self._probing:
                self._probing = False
                self._opened_at = self._clock.now()


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_delay: float
    max_delay: float

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))], rounded for stable goldens."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return round(rng.uniform(0, cap), 3)

    def wait_for(self, attempt: int, error: BaseException | None, rng: random.Random) -> float:
        """The provider's Retry-After when it sent one (capped at ``max_delay``), else jitter."""
        asked = getattr(error, "retry_after", None)
        if isinstance(asked, (int, float)):
            return round(min(float(asked), self.max_delay), 3)
        return self.delay(attempt, rng)


OnRetry = Callable[[str, int, str, float], None]  # provider, attempt, error, sleep seconds


def call_with_resilience(
    request: ChatRequest,
    *,
    providers: Sequence[ModelClient],
    breakers: dict[str, CircuitBreaker],
    policy: RetryPolicy,
    sleeper: Sleeper,
    rng: random.Random,
    on_retry: OnRetry,
    make_breaker: Callable[[], CircuitBreaker],
) -> tuple[str, ChatResponse]:
    """Try each provider in order (failover), each with bounded retries; return (provider, answer)."""
    last_error: ProviderError | None = None
    for client in providers:
        breaker = breakers.setdefault(client.name, make_breaker())
        if breaker.state is BreakerState.OPEN:
            PROVIDER_CALLS.labels(provider=client.name, outcome="circuit_open").inc()
            last_error = CircuitOpen(
                f"circuit for {client.name} is open; not calling it", provider=client.name
            )
            continue

        def before_sleep(state: RetryCallState, _name: str = client.name) -> None:
            exc = state.outcome.exception() if state.outcome else None
            sleep = state.upcoming_sleep
            PROVIDER_RETRIES.labels(provider=_name).inc()
            on_retry(_name, state.attempt_number, str(exc), sleep)

        def attempt(_client: ModelClient = client, _breaker: CircuitBreaker = breaker) -> ChatResponse:
            if not _breaker.allow():
                raise CircuitOpen(f"circuit for {_client.name} opened", provider=_client.name)
            started = time.perf_counter()  # metrics only: never reaches a trace or a golden
            try:
                with span("provider.call", **{"provider.name": _client.name, "llm.model": request.model}):
                    answer = _client.complete(request)
            except ProviderCallError:
                PROVIDER_LATENCY.labels(provider=_client.name).observe(time.perf_counter() - started)
                _breaker.record_failure()
                set_breaker_state(_client.name, _breaker.state)
                PROVIDER_CALLS.labels(provider=_client.name, outcome="error").inc()
                raise
            except BaseException:
                _breaker.abandon()
                raise
            PROVIDER_LATENCY.labels(provider=_client.name).observe(time.perf_counter() - started)
            _breaker.record_success()
            set_breaker_state(_client.name, _breaker.state)
            PROVIDER_CALLS.labels(provider=_client.name, outcome="ok").inc()
            return answer

        retrying = Retrying(
            stop=stop_after_attempt(policy.max_attempts),
            wait=lambda state: policy.wait_for(
                state.attempt_number, state.outcome.exception() if state.outcome else None, rng
            ),
            retry=retry_if_exception(lambda e: isinstance(e, ProviderCallError) and e.retryable),
            sleep=sleeper.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return client.name, retrying(attempt)
        except ProviderError as exc:
            last_error = exc
    assert last_error is not None  # providers is never empty (checked by the orchestrator)
    raise last_error
