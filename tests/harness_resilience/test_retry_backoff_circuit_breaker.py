"""Upstream provider continuously fails, then recovers: retries stay bounded and the breaker heals.

Test plan scenario "retry storm": the provider simulator answers 503 a scripted number of
times. Every retry must be visible (RecordingSleeper and ``RetryScheduled`` events, the
same numbers), capped by ``retry_max_delay``, bounded by ``retry_max_attempts``; once the
breaker opens no request reaches the provider until ``breaker_reset_seconds`` have passed
on the (frozen) clock, then exactly one probe goes through and a success closes it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from harness.clock import RecordingSleeper, SystemClock
from harness.database.connect import unit_of_work
from harness.database.models import Run
from harness.errors import CircuitOpen, ProviderError
from harness.events import CollectingSink, RetryScheduled
from harness.ids import IdSource
from harness.jobs.worker import drain
from harness.providers.base import ChatRequest
from harness.providers.openai_client import OpenAIChatClient
from harness.providers.resilience import BreakerState, CircuitBreaker, RetryPolicy, call_with_resilience
from harness.runtime import Runtime
from replay.provider_sim import SimulatorHandle, start_simulator
from tests.support.faults import AlwaysFailingClient, frozen_clock

pytestmark = [pytest.mark.tier1]

SCRIPT = Path(__file__).parent / "data" / "flaky_provider.yaml"
SEED = 1234
START = "2026-01-01T00:00:00Z"
SETTINGS: dict[str, Any] = {
    "seed": SEED,
    "retry_max_attempts": 3,
    "retry_base_delay": 0.5,
    "retry_max_delay": 0.75,
    "breaker_failure_threshold": 5,
    "breaker_reset_seconds": 30.0,
}


@pytest.fixture
def sim() -> Iterator[SimulatorHandle]:
    with start_simulator(SCRIPT) as handle:
        yield handle


@pytest.fixture
def frozen() -> Iterator[Any]:
    with frozen_clock(START) as clock:
        yield clock


@pytest.fixture
def rt(make_runtime: Any, database_url: str, sim: SimulatorHandle, frozen: Any) -> Runtime:
    provider = OpenAIChatClient(base_url=sim.base_url, api_key="sk-sim-test", timeout=10)
    return make_runtime(database_url, providers=[provider], **SETTINGS)


def _run(rt: Runtime, run_factory: Callable[..., str], task: str) -> Run:
    run_id = run_factory(rt, task=task, tenant="acme")
    drain(rt)
    with unit_of_work(rt.sessions) as session:
        return session.execute(select(Run).where(Run.id == run_id)).scalar_one()


def _provider_hits(sim: SimulatorHandle) -> int:
    return sum(1 for r in sim.requests if r.path.endswith("/chat/completions"))


def _cap(attempt: int) -> float:
    return min(SETTINGS["retry_max_delay"], SETTINGS["retry_base_delay"] * 2 ** (attempt - 1))


def test_blip_is_retried_with_a_recorded_seeded_backoff_then_succeeds(
    rt: Runtime, run_factory: Callable[..., str], sim: SimulatorHandle
) -> None:
    run = _run(rt, run_factory, "a brief blip upstream")

    assert run.status == "SUCCEEDED", run.error
    assert [r.status for r in sim.requests] == [503, 503, 200]
    assert isinstance(rt.sleeper, RecordingSleeper) and isinstance(rt.sink, CollectingSink)
    retries = rt.sink.of_type(RetryScheduled)
    assert [(e.run_id, e.call, e.provider, e.attempt) for e in retries] == [
        (run.id, 0, "openai", 1),
        (run.id, 0, "openai", 2),
    ]
    assert all("503" in e.error for e in retries)
    # The sleeper slept exactly what the trace says, and nothing else.
    assert rt.sleeper.slept == [e.sleep_seconds for e in retries]
    # Deterministic for a seed: a pure function of (seed, run id, call number).
    rng = IdSource(SEED).rng_for(f"{run.id}:0")
    policy = RetryPolicy(
        SETTINGS["retry_max_attempts"], SETTINGS["retry_base_delay"], SETTINGS["retry_max_delay"]
    )
    assert rt.sleeper.slept == [policy.delay(1, rng), policy.delay(2, rng)]
    assert all(0 <= s <= _cap(a) for a, s in enumerate(rt.sleeper.slept, start=1))
    assert rt.breakers["openai"].state is BreakerState.CLOSED


def test_non_retryable_error_is_not_retried(
    rt: Runtime, run_factory: Callable[..., str], sim: SimulatorHandle
) -> None:
    run = _run(rt, run_factory, "a malformed request")

    assert run.status == "FAILED"
    assert run.error is not None and "400" in run.error
    assert _provider_hits(sim) == 1
    assert rt.sleeper.slept == []  # type: ignore[attr-defined]


def test_continuous_failure_opens_the_breaker_then_half_opens_and_recovers(
    rt: Runtime, run_factory: Callable[..., str], sim: SimulatorHandle, frozen: Any
) -> None:
    hits: list[int] = []
    runs: list[Run] = []

    def one_run() -> Run:
        before = _provider_hits(sim)
        run = _run(rt, run_factory, "survive a long outage")
        hits.append(_provider_hits(sim) - before)
        runs.append(run)
        return run

    # Run 1: three attempts (the retry bound), all 503; the run fails with the provider's reason.
    first = one_run()
    assert first.status == "FAILED"
    assert first.error is not None and first.error.startswith("provider-error:") and "503" in first.error
    assert rt.breakers["openai"].state is BreakerState.CLOSED  # 3 failures < threshold 5

    # Run 2: two more failures reach the threshold; the third attempt is refused locally.
    second = one_run()
    assert second.status == "FAILED"
    assert second.error is not None and second.error.startswith("circuit-open:")
    assert rt.breakers["openai"].state is BreakerState.OPEN

    # While open, runs fail fast and no request reaches the provider, however many there are.
    for _ in range(3):
        assert one_run().status == "FAILED"
    frozen.tick(SETTINGS["breaker_reset_seconds"] - 1)
    assert rt.breakers["openai"].state is BreakerState.OPEN
    assert one_run().error.startswith("circuit-open:")  # type: ignore[union-attr]

    # After the reset interval: half-open, exactly one probe; a failed probe re-opens at once.
    frozen.tick(1)
    assert rt.breakers["openai"].state is BreakerState.HALF_OPEN
    assert one_run().status == "FAILED"
    assert rt.breakers["openai"].state is BreakerState.OPEN
    frozen.tick(SETTINGS["breaker_reset_seconds"])
    assert one_run().status == "FAILED"  # the 7th and last scripted 503

    # The provider is back: the next probe succeeds and closes the breaker.
    frozen.tick(SETTINGS["breaker_reset_seconds"])
    recovered = one_run()
    assert recovered.status == "SUCCEEDED", recovered.error
    assert rt.breakers["openai"].state is BreakerState.CLOSED
    assert hits == [3, 2, 0, 0, 0, 0, 1, 1, 1]
    assert [r.status for r in sim.requests] == [503] * 7 + [200]

    # Bounded: never more sleeps than attempts allow, every one capped.
    retries = rt.sink.of_type(RetryScheduled)  # type: ignore[attr-defined]
    per_run: dict[str, list[int]] = {}
    for event in retries:
        per_run.setdefault(event.run_id, []).append(event.attempt)
    assert all(len(a) <= SETTINGS["retry_max_attempts"] - 1 for a in per_run.values())
    assert all(0 <= e.sleep_seconds <= _cap(e.attempt) for e in retries)
    assert rt.sleeper.slept == [e.sleep_seconds for e in retries]  # type: ignore[attr-defined]

    # A closed breaker serves normally afterwards (no lingering failure count).
    assert one_run().status == "SUCCEEDED"
    assert rt.breakers["openai"].state is BreakerState.CLOSED


REQUEST = ChatRequest(
    model="sim-small", messages=[{"role": "user", "content": "hi"}], tools=[], temperature=0, seed=7
)


def _schedule(seed: int, *, attempts: int = 8, base: float = 0.5, cap: float = 2.0) -> list[float]:
    sleeper = RecordingSleeper()
    client = AlwaysFailingClient("flaky")
    with pytest.raises(ProviderError):
        call_with_resilience(
            REQUEST,
            providers=[client],
            breakers={},
            policy=RetryPolicy(attempts, base, cap),
            sleeper=sleeper,
            rng=random.Random(seed),
            on_retry=lambda *_: None,
            make_breaker=lambda: CircuitBreaker(clock=SystemClock(), threshold=100, reset_seconds=30),
        )
    assert len(client.calls) == attempts  # bounded by the policy, not by luck
    return sleeper.slept


def test_backoff_schedule_is_seeded_bounded_and_capped() -> None:
    first, again, other = _schedule(1), _schedule(1), _schedule(2)

    assert first == again
    assert first != other
    assert len(first) == 7
    caps = [min(2.0, 0.5 * 2 ** (a - 1)) for a in range(1, 8)]
    assert all(0 <= s <= c for s, c in zip(first, caps, strict=True))
    assert max(first + other) <= 2.0


def test_open_breaker_skips_the_provider_without_sleeping() -> None:
    breaker = CircuitBreaker(clock=SystemClock(), threshold=1, reset_seconds=3600)
    breaker.record_failure()
    client, sleeper = AlwaysFailingClient("down"), RecordingSleeper()

    with pytest.raises(CircuitOpen):
        call_with_resilience(
            REQUEST,
            providers=[client],
            breakers={"down": breaker},
            policy=RetryPolicy(5, 0.5, 8.0),
            sleeper=sleeper,
            rng=random.Random(0),
            on_retry=lambda *_: None,
            make_breaker=lambda: CircuitBreaker(clock=SystemClock(), threshold=1, reset_seconds=3600),
        )
    # The shared, open breaker was used (a fresh one would have let five attempts through).
    assert client.calls == [] and sleeper.slept == []
