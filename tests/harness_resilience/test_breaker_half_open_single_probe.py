"""A half-open circuit breaker lets exactly one probe through, however many callers arrive.

The probe is held inside the provider while eight more callers try the same provider: all
eight are refused locally (``CircuitOpen``) and fail over, so the provider sees one call.
A failed probe re-opens the breaker; an abandoned one (a crash) re-arms it; a good one closes it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from harness.clock import RecordingSleeper, SystemClock
from harness.errors import CircuitOpen
from harness.providers.base import ChatRequest, ChatResponse
from harness.providers.resilience import BreakerState, CircuitBreaker, RetryPolicy, call_with_resilience
from tests.support.faults import frozen_clock

pytestmark = [pytest.mark.tier0]

REQUEST = ChatRequest(
    model="sim-small", messages=[{"role": "user", "content": "hi"}], tools=[], temperature=0, seed=7
)
OK = ChatResponse(content="ok", tool_calls=(), finish_reason="stop")
RESET = 30.0


class HeldProvider:
    """Answers OK, but the first call waits inside the provider until released."""

    name = "held"

    def __init__(self) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def complete(self, request: ChatRequest) -> ChatResponse:
        with self._lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            self.entered.set()
            assert self.release.wait(30), "the test never released the probe"
        return OK


class Fallback:
    name = "fallback"

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        return OK


@pytest.fixture
def frozen() -> Iterator[Any]:
    with frozen_clock() as clock:
        yield clock


def _open_breaker() -> CircuitBreaker:
    breaker = CircuitBreaker(clock=SystemClock(), threshold=1, reset_seconds=RESET)
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    return breaker


def _call(providers: list[Any], breakers: dict[str, CircuitBreaker]) -> str:
    name, _ = call_with_resilience(
        REQUEST,
        providers=providers,
        breakers=breakers,
        policy=RetryPolicy(3, 0.5, 2.0),
        sleeper=RecordingSleeper(),
        rng=random.Random(0),
        on_retry=lambda *_: None,
        make_breaker=lambda: CircuitBreaker(clock=SystemClock(), threshold=5, reset_seconds=RESET),
    )
    return name


def test_exactly_one_half_open_probe_reaches_the_provider(frozen: Any) -> None:
    breakers = {"held": _open_breaker()}
    held, fallback = HeldProvider(), Fallback()
    frozen.tick(RESET)
    assert breakers["held"].state is BreakerState.HALF_OPEN

    answered: list[str] = []
    probe = threading.Thread(target=lambda: answered.append(_call([held, fallback], breakers)))
    probe.start()
    assert held.entered.wait(30), "the probe never reached the provider"
    others = [_call([held, fallback], breakers) for _ in range(8)]
    held.release.set()
    probe.join(30)

    assert held.calls == 1  # the one probe; without the fix all nine callers get through
    assert others == ["fallback"] * 8 and fallback.calls == 8
    assert answered == ["held"]
    assert breakers["held"].state is BreakerState.CLOSED


def test_a_failed_probe_reopens_and_the_next_window_allows_one_more(frozen: Any) -> None:
    breaker = _open_breaker()
    frozen.tick(RESET)
    assert breaker.allow() is True
    assert breaker.allow() is False  # the probe is taken
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.allow() is False
    frozen.tick(RESET)
    assert [breaker.allow() for _ in range(3)] == [True, False, False]
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(5))


def test_an_abandoned_probe_is_re_armed_not_leaked(frozen: Any) -> None:
    class Crashing:
        name = "crashing"

        def complete(self, request: ChatRequest) -> ChatResponse:
            raise KeyboardInterrupt  # not a provider error: the probe must not stay taken forever

    breakers = {"crashing": _open_breaker()}
    frozen.tick(RESET)
    with pytest.raises(KeyboardInterrupt):
        _call([Crashing()], breakers)
    assert breakers["crashing"].state is BreakerState.OPEN
    frozen.tick(RESET)
    assert breakers["crashing"].allow() is True


def test_half_open_refusal_without_fallback_is_circuit_open(frozen: Any) -> None:
    breakers = {"held": _open_breaker()}
    frozen.tick(RESET)
    assert breakers["held"].allow() is True  # someone else holds the probe
    with pytest.raises(CircuitOpen):
        _call([HeldProvider()], breakers)
