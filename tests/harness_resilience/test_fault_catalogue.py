"""Every fault of the catalogue, on both providers, through the harness against the real simulator.

Each case scripts one fault for the first attempt of a run's only model call (``times: 1``);
the harness must classify it as retryable, record exactly one retry with a message naming
the fault, sleep what the trace says, and finish the run with the scripted answer. The
connect timeout is the one fault no loopback server can act out on cue: it is injected at
the SDK transport (``replay.sim.faults``), as the replay engine does in record and replay.
Streams: a slow dribble under the read timeout is no fault at all, and a streamed answer
gives the same steps, prompts and answers as a plain one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from harness.accounts import create_tenant
from harness.database.connect import unit_of_work
from harness.database.migrate import upgrade
from harness.database.models import Run, Step
from harness.events import CollectingSink, ModelAnswered, PromptSent, RetryScheduled, event_to_dict
from harness.jobs.worker import drain
from harness.providers.anthropic_client import AnthropicMessagesClient
from harness.providers.openai_client import OpenAIChatClient
from harness.runtime import Runtime
from replay.provider_sim import SimulatorHandle, start_simulator
from replay.sim.faults import FaultInjectingTransport
from replay.sim_script import parse_script
from tests.support.db import sqlite_url

pytestmark = [pytest.mark.tier1]

READ_TIMEOUT = 1.0  # the clients' timeout; stalls below last five times longer


@dataclass(frozen=True)
class Case:
    id: str
    fault: dict[str, Any]
    error: str  # what the recorded retry says
    stream: bool = False
    statuses: tuple[int, ...] = (200,)  # what the simulator answered, in order (None-free)
    slept: float | None = None  # an exact honoured Retry-After, when the fault carries one
    providers: tuple[str, ...] = ("openai", "anthropic")
    only_transport: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("connect_timeout", {"kind": "connect_timeout"}, "timed out", only_transport=True),
    Case("read_timeout", {"kind": "read_timeout", "stall_ms": 5000}, "timed out", statuses=(200, 200)),
    Case("reset_before_headers", {"kind": "reset_before_headers"}, "connection failed", statuses=(200, 200)),
    Case("reset_after_headers", {"kind": "reset_after_headers"}, "connection failed", statuses=(200, 200)),
    Case("empty_body", {"kind": "empty_body"}, "malformed response", statuses=(200, 200)),
    Case("http_500", {"status": 500}, "HTTP 500", statuses=(500, 200)),
    Case("http_502", {"status": 502}, "HTTP 502", statuses=(502, 200)),
    Case("http_503", {"status": 503}, "HTTP 503", statuses=(503, 200)),
    Case(
        "anthropic_529_overloaded",
        {"status": 529, "type": "overloaded_error", "message": "Overloaded"},
        "HTTP 529: Overloaded",
        statuses=(529, 200),
        providers=("anthropic",),
    ),
    Case(
        "http_429_retry_after",
        {"status": 429, "retry_after": 2},
        "(retry-after 2s)",
        statuses=(429, 200),
        slept=2.0,
    ),
    Case(
        "http_429_retry_after_ms",
        {"status": 429, "retry_after_ms": 1250},
        "(retry-after 1.25s)",
        statuses=(429, 200),
        slept=1.25,
    ),
    Case(
        "http_429_retry_after_capped",
        {"status": 429, "retry_after": 600},
        "(retry-after 600s)",
        statuses=(429, 200),
        slept=3.0,  # retry_max_delay
    ),
    Case("malformed_json", {"kind": "malformed"}, "malformed response", statuses=(200, 200)),
    Case(
        "stream_malformed_json",
        {"kind": "malformed"},
        "malformed response",
        stream=True,
        statuses=(200, 200),
    ),
    Case(
        "stream_cut_before_final_event",
        {"kind": "stream_cut", "after": 3},
        "stream ended before",
        stream=True,
        statuses=(200, 200),
    ),
    Case(
        "error_event_mid_stream",
        {"kind": "error_event", "after": 2, "message": "overloaded mid-answer"},
        "error event mid-stream",
        stream=True,
        statuses=(200, 200),
    ),
    Case(
        "stall_longer_than_read_timeout",
        {"kind": "stall", "after": 2, "stall_ms": 5000},
        "timed out",
        stream=True,
        statuses=(200, 200),
    ),
]
PARAMS = [
    pytest.param(case, provider, id=f"{case.id}-{provider}")
    for case in CASES
    for provider in ("openai", "anthropic")
    if provider in case.providers
]
TOOLS_ANSWER = {"name": "read_file", "arguments": {"path": "sales.csv"}}  # 20 chars: two stream pieces


def _script() -> Any:
    conversations = [
        {
            "name": case.id,
            "match": {"user_contains": f"case {case.id}."},
            "turns": [{"content": f"answered after {case.id}", "fault": {**case.fault, "times": 1}}],
        }
        for case in CASES
    ]
    conversations.append(
        {
            "name": "dribble",
            "match": {"user_contains": "case dribble."},
            "turns": [
                {"tool_calls": [TOOLS_ANSWER], "content": "Reading the numbers first.", "chunk_delay_ms": 20},
                {"content": "North 120, South 80: total 200.", "chunk_delay_ms": 20},
            ],
        }
    )
    return parse_script({"format_version": 1, "conversations": conversations}, source="fault catalogue")


SCRIPT = _script()


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once per module; each test copies the file (migrations dominate otherwise)."""
    folder = tmp_path_factory.mktemp("fault-catalogue-template")
    upgrade(sqlite_url(folder))
    return folder / "harness.db"


@pytest.fixture
def database(migrated_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "db"
    target.mkdir()
    shutil.copyfile(migrated_template, target / "harness.db")
    return sqlite_url(target)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with start_simulator(SCRIPT) as handle:
        yield handle


@pytest.fixture(scope="module")
def sim_behind_injector() -> Iterator[SimulatorHandle]:
    """The replay engine's setup: transport faults are the injector's, never the server's."""
    with start_simulator(SCRIPT, transport_faults=False) as handle:
        yield handle


def _client(provider: str, sim: SimulatorHandle, *, transport: Any = None) -> Any:
    if provider == "anthropic":
        return AnthropicMessagesClient(
            base_url=sim.origin, api_key="sk-sim-test", timeout=READ_TIMEOUT, transport=transport
        )
    return OpenAIChatClient(
        base_url=sim.base_url, api_key="sk-sim-test", timeout=READ_TIMEOUT, transport=transport
    )


def _runtime(make_runtime: Any, url: str, client: Any, *, stream: bool) -> Runtime:
    rt: Runtime = make_runtime(url, providers=[client], retry_max_attempts=3, retry_max_delay=3.0)
    create_tenant(
        rt,
        tenant_id="acme",
        name="Acme",
        routing={
            "allowed_models": ["sim-small"],
            "default_model": "sim-small",
            "allowed_tools": ["list_files", "read_file"],
            "providers": [{"provider": client.name, "stream": stream}],
        },
    )
    (rt.settings.tenant_files_dir / "acme").mkdir(parents=True, exist_ok=True)
    (rt.settings.tenant_files_dir / "acme" / "sales.csv").write_text("region,amount\nNorth,120\nSouth,80\n")
    return rt


def _finish(rt: Runtime, run_factory: Callable[..., str], task: str) -> Run:
    run_id = run_factory(rt, task=task, tenant="acme")
    drain(rt)
    with unit_of_work(rt.sessions) as session:
        return session.execute(select(Run).where(Run.id == run_id)).scalar_one()


@pytest.mark.parametrize(("case", "provider"), PARAMS)
def test_fault_is_retried_once_and_the_run_succeeds(
    case: Case,
    provider: str,
    request: pytest.FixtureRequest,
    make_runtime: Any,
    database: str,
    run_factory: Callable[..., str],
) -> None:
    sim: SimulatorHandle = request.getfixturevalue("sim_behind_injector" if case.only_transport else "sim")
    transport = FaultInjectingTransport(SCRIPT) if case.only_transport else None
    rt = _runtime(make_runtime, database, _client(provider, sim, transport=transport), stream=case.stream)
    before = len(sim.requests)
    sim_path = "/v1/messages" if provider == "anthropic" else "/v1/chat/completions"

    run = _finish(rt, run_factory, f"Handle case {case.id}. Then stop.")

    assert run.status == "SUCCEEDED", run.error
    assert isinstance(rt.sink, CollectingSink)
    retries = rt.sink.of_type(RetryScheduled)
    assert [(r.provider, r.attempt) for r in retries] == [(provider, 1)]
    assert case.error in retries[0].error, retries[0].error
    assert rt.sleeper.slept == [retries[0].sleep_seconds]  # type: ignore[attr-defined]
    if case.slept is not None:
        assert retries[0].sleep_seconds == case.slept
    answered = rt.sink.of_type(ModelAnswered)
    assert [a.content for a in answered] == [f"answered after {case.id}"]
    seen = [(r.path, r.status) for r in sim.requests[before:]]
    if case.only_transport:
        assert transport is not None and [k for *_, k in transport.injected] == [case.fault["kind"]]
        assert seen == [(sim_path, 200)]  # the faulty attempt never left the client
    else:
        assert seen == [(sim_path, s) for s in case.statuses]


def _answers(rt: Runtime, run_id: str) -> dict[str, Any]:
    assert isinstance(rt.sink, CollectingSink)
    with unit_of_work(rt.sessions) as session:
        steps = session.execute(select(Step).where(Step.run_id == run_id).order_by(Step.seq)).scalars()
        rows = [(s.kind, s.name, s.input, s.output, s.outcome) for s in steps]
    events = [
        {k: v for k, v in event_to_dict(e).items() if k != "run_id"}
        for e in rt.sink.events
        if isinstance(e, PromptSent | ModelAnswered)
    ]
    return {"steps": rows, "events": events}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_slow_dribble_streams_the_same_prompts_and_answers_as_a_plain_call(
    provider: str,
    sim: SimulatorHandle,
    make_runtime: Any,
    tmp_path: Path,
    migrated_template: Path,
    run_factory: Callable[..., str],
) -> None:
    seen: dict[bool, dict[str, Any]] = {}
    for stream in (False, True):
        folder = tmp_path / f"stream-{stream}"
        folder.mkdir()
        shutil.copyfile(migrated_template, folder / "harness.db")
        url = sqlite_url(folder)
        rt = _runtime(make_runtime, url, _client(provider, sim), stream=stream)
        run = _finish(rt, run_factory, "Handle case dribble. Read the sales.")
        assert run.status == "SUCCEEDED", run.error
        assert rt.sink.of_type(RetryScheduled) == []  # type: ignore[attr-defined]
        seen[stream] = _answers(rt, run.id)

    plain, streamed = seen[False], seen[True]
    assert streamed == plain
    tool_call = plain["steps"][0][3]["tool_calls"][0]["function"]
    assert tool_call == {
        "name": "read_file",
        "arguments": '{"path":"sales.csv"}',
    }
    assert plain["steps"][1][:2] == ("tool_call", "read_file") and plain["steps"][1][4] == "ok"
