"""Observability asserted: Prometheus counters move exactly as they should, and refusals are logged
with a reason code and no secret (test plan step 18).

Failover, retry, rate-limit and dead-letter scenarios each read the registry before and after and
assert the exact deltas; provider names are unique per test, so other tests never disturb them.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.clock import RecordingSleeper, SystemClock
from harness.jobs import worker as worker_module
from harness.jobs.queue import JobKind
from harness.observability import REGISTRY, configure_logging
from harness.providers.base import ChatRequest
from harness.providers.openai_client import OpenAIChatClient
from harness.providers.resilience import CircuitBreaker, RetryPolicy, call_with_resilience
from replay.provider_sim import start_simulator
from tests.support.api import World, world
from tests.support.faults import AlwaysFailingClient, frozen_clock

pytestmark = [pytest.mark.tier1]

FLAKY = Path(__file__).resolve().parents[1] / "harness_resilience" / "data" / "flaky_provider.yaml"
PLAIN = Path(__file__).resolve().parents[1] / "harness_integration" / "data" / "plain_script.yaml"
SECRET_TOKEN = "hk_deadbeefdeadbeef_" + "5" * 48  # a well-formed, never-issued bearer token


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def chat(text: str) -> ChatRequest:
    return ChatRequest(
        model="sim-small", messages=[{"role": "user", "content": text}], tools=[], temperature=0, seed=7
    )


def resilient(request_: ChatRequest, providers: list[Any], *, attempts: int = 3, threshold: int = 3) -> Any:
    breakers: dict[str, CircuitBreaker] = {}
    return call_with_resilience(
        request_,
        providers=providers,
        breakers=breakers,
        policy=RetryPolicy(attempts, 0.01, 0.02),
        sleeper=RecordingSleeper(),
        rng=random.Random(1),
        on_retry=lambda *_: None,
        make_breaker=lambda: CircuitBreaker(clock=SystemClock(), threshold=threshold, reset_seconds=30),
    ), breakers


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(stream=stream)
    yield stream
    configure_logging()


def test_failover_moves_each_providers_counters_exactly(request: pytest.FixtureRequest) -> None:
    primary = f"down-{request.node.name[:20]}"
    fallback = f"sim-{request.node.name[:20]}"
    metrics = {
        "p_err": ("harness_provider_calls_total", {"provider": primary, "outcome": "error"}),
        "p_open": ("harness_provider_calls_total", {"provider": primary, "outcome": "circuit_open"}),
        "p_retry": ("harness_provider_retries_total", {"provider": primary}),
        "p_lat": ("harness_provider_latency_seconds_count", {"provider": primary}),
        "f_ok": ("harness_provider_calls_total", {"provider": fallback, "outcome": "ok"}),
        "f_lat": ("harness_provider_latency_seconds_count", {"provider": fallback}),
    }
    before = {k: value(n, **lab) for k, (n, lab) in metrics.items()}
    with start_simulator(FLAKY) as sim:
        sim_client = OpenAIChatClient(base_url=sim.base_url, api_key="sk-sim-test", timeout=10, name=fallback)
        down = AlwaysFailingClient(primary)
        (name, _), breakers = resilient(chat("hello"), [down, sim_client])
        assert name == fallback
        # The primary's breaker opened after 3 failures: the gauge says so.
        assert value("harness_breaker_state", provider=primary) == 2
        assert value("harness_breaker_state", provider=fallback) == 0
        # A second call through the same breakers skips the open primary without calling it.
        call_with_resilience(
            chat("hello again"),
            providers=[down, sim_client],
            breakers=breakers,
            policy=RetryPolicy(3, 0.01, 0.02),
            sleeper=RecordingSleeper(),
            rng=random.Random(1),
            on_retry=lambda *_: None,
            make_breaker=lambda: CircuitBreaker(clock=SystemClock(), threshold=3, reset_seconds=30),
        )
    delta = {k: value(n, **lab) - before[k] for k, (n, lab) in metrics.items()}
    assert delta == {"p_err": 3, "p_open": 1, "p_retry": 2, "p_lat": 3, "f_ok": 2, "f_lat": 2}
    assert len(down.calls) == 3


def test_retry_then_success_counts_each_attempt_once(request: pytest.FixtureRequest) -> None:
    name = f"blip-{request.node.name[:20]}"
    before = {
        "err": value("harness_provider_calls_total", provider=name, outcome="error"),
        "ok": value("harness_provider_calls_total", provider=name, outcome="ok"),
        "retry": value("harness_provider_retries_total", provider=name),
        "lat": value("harness_provider_latency_seconds_count", provider=name),
    }
    with start_simulator(FLAKY) as sim:
        client = OpenAIChatClient(base_url=sim.base_url, api_key="sk-sim-test", timeout=10, name=name)
        (used, answer), _ = resilient(chat("a brief blip please"), [client], attempts=3, threshold=5)
    assert used == name and answer is not None
    after = {
        "err": value("harness_provider_calls_total", provider=name, outcome="error"),
        "ok": value("harness_provider_calls_total", provider=name, outcome="ok"),
        "retry": value("harness_provider_retries_total", provider=name),
        "lat": value("harness_provider_latency_seconds_count", provider=name),
    }
    assert {k: after[k] - before[k] for k in before} == {"err": 2, "ok": 1, "retry": 2, "lat": 3}
    assert value("harness_breaker_state", provider=name) == 0  # success closed it again


@pytest.fixture
def w(make_runtime: Any, sqlite_database_url: str) -> Iterator[World]:
    with world(make_runtime, sqlite_database_url, rate_limit_per_key="3/minute") as it:
        yield it


def test_rate_limit_and_auth_refusals_are_counted_and_logged_without_secrets(
    w: World, logs: io.StringIO
) -> None:
    limited = value("harness_rate_limit_rejections_total")
    unknown = value("harness_auth_failures_total", reason="unknown")
    codes = [w.get("runs/run_nope", "carol").status_code for _ in range(5)]
    assert codes == [404, 404, 404, 429, 429]
    refused = w.client.get("/api/harness/runs/x", headers={"Authorization": f"Bearer {SECRET_TOKEN}"})
    assert refused.status_code == 401
    assert value("harness_rate_limit_rejections_total") - limited == 2
    assert value("harness_auth_failures_total", reason="unknown") - unknown == 1
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    refusals = [line for line in lines if line.get("event") == "request refused"]
    assert [(r["status"], r["reason_code"]) for r in refusals] == [
        *[(404, "not-found")] * 3,
        *[(429, "rate-limited")] * 2,
        (401, "unknown"),
    ]
    text = logs.getvalue()
    assert SECRET_TOKEN not in text and SECRET_TOKEN[:20] not in text
    assert w.keys["carol"].token not in text


class _AlwaysFails:
    def __call__(self, rt: Any, job: Any) -> None:
        raise RuntimeError("handler failure with password=hunter2-not-logged")


@pytest.fixture
def plain(make_runtime: Any, sqlite_database_url: str) -> Iterator[World]:
    with world(make_runtime, sqlite_database_url, script=PLAIN) as it:
        yield it


def test_dead_letter_moves_counter_and_gauges_and_logs_a_reason_code(
    plain: World, monkeypatch: pytest.MonkeyPatch, logs: io.StringIO
) -> None:
    monkeypatch.setitem(worker_module.HANDLERS, JobKind.EXECUTE_RUN, _AlwaysFails())
    dead_before = value("harness_dead_letters_total", kind=str(JobKind.EXECUTE_RUN))
    attempts = plain.rt.settings.job_max_attempts
    with frozen_clock() as clock:
        plain.post("run", "alice", {"task": "tidy up"})
        plain.post("run", "alice", {"task": "tidy up too"})
        for _ in range(attempts + 1):
            plain.drain()
            clock.tick(timedelta(hours=1))
    assert value("harness_dead_letters_total", kind=str(JobKind.EXECUTE_RUN)) - dead_before == 2
    assert value("harness_dead_letter_size") == 2
    assert value("harness_queue_depth") == 0
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    dead = [line for line in lines if line.get("event") == "job dead-lettered"]
    assert len(dead) == 2 and {d["reason_code"] for d in dead} == {"dead_lettered"}
    retried = [line for line in lines if line.get("event") == "job failed"]
    assert len(retried) == 2 * (attempts - 1) and {r["reason_code"] for r in retried} == {"retry_scheduled"}
    assert "hunter2" not in logs.getvalue()
