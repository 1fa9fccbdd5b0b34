"""Run one scenario through the real harness, recording or replaying its provider traffic.

Record: fresh junk DB, frozen clock at the scenario's start, seeded ids, temperature 0,
worker drained inline after every API step; the official SDK talks to the provider
simulator (or a real OpenAI-compatible endpoint) through vcrpy, which writes the cassette.
Replay: the same, with vcrpy in ``none`` mode and no simulator: any unrecorded request is a
:class:`CassetteMissSignal`. Either way the trace is built from the persisted rows, the
artifact files and the event sink.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from freezegun import freeze_time
from pydantic import ValidationError
from sqlalchemy import select
from vcr.record_mode import RecordMode

from harness import __version__
from harness.accounts import create_tenant, issue_key
from harness.api.request_signing import key_id_of_token, signature_headers
from harness.app import create_app
from harness.audit import load_entries
from harness.canonical import dumps_canonical, sha256_hex
from harness.clock import RecordingSleeper
from harness.database.connect import unit_of_work
from harness.database.migrate import upgrade
from harness.database.models import Approval, Artifact, Document, Run, RunTransition, Step
from harness.events import CollectingSink, PromptSent, RetryScheduled
from harness.jobs.worker import drain
from harness.orchestrator.prompts import TEMPLATE_NAMES
from harness.providers.anthropic_client import AnthropicMessagesClient
from harness.providers.base import ModelClient
from harness.providers.openai_client import OpenAIChatClient
from harness.redaction import redact_data
from harness.runtime import Runtime, build_runtime
from harness.settings import settings_without_environment
from replay.cassette import PROVIDER_ORIGIN, CassetteMissSignal, use_cassette
from replay.errors import CassetteMiss, ScenarioError
from replay.leak_marking import mark_leaks
from replay.provider_sim import start_simulator
from replay.scenario import Scenario, StepSpec
from replay.sim.faults import FaultCounter, FaultInjectingTransport
from replay.wire import WireLeak, WireWatch

TRACE_FORMAT_VERSION = 1
REPLAY_API_KEY = "sk-replay-placeholder"  # never sent anywhere: replay has no network


@dataclass(frozen=True)
class ScenarioRun:
    trace: dict[str, Any]
    audit: list[dict[str, Any]]
    unexpected_statuses: tuple[str, ...]
    cassette_misses: tuple[str, ...] = ()
    unused_interactions: tuple[str, ...] = ()  # recorded answers replay never asked for
    wire_leaks: tuple[WireLeak, ...] = ()

    @property
    def trace_bytes(self) -> bytes:
        return dumps_canonical(self.trace).encode("utf-8")


_template_lock = threading.Lock()
_template_db: Path | None = None


def _migrated_db(target: Path) -> str:
    """A migrated SQLite file at ``target``: migrate once per process, then copy the file."""
    global _template_db
    with _template_lock:
        if _template_db is None or not _template_db.exists():
            folder = Path(tempfile.mkdtemp(prefix="harness-replay-template-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)  # no leftovers in /tmp
            upgrade(f"sqlite:///{folder / 'template.db'}")
            _template_db = folder / "template.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_template_db, target)
    return f"sqlite:///{target.as_posix()}"


@contextmanager
def _provider(
    scenario: Scenario, source: str, *, record: bool, endpoint: tuple[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """(base URL, API key): the simulator, or ``endpoint`` when recording; a dead origin in replay.

    A real endpoint is only ever the explicit ``endpoint`` (``record --endpoint URL``), never
    ``OPENAI_BASE_URL`` from the shell: a stray variable must not send a scenario to a provider.
    """
    if not record:
        yield f"{PROVIDER_ORIGIN}/v1", REPLAY_API_KEY
        return
    if endpoint is not None:
        yield endpoint
        return
    # Faults without a response are the transport injector's, in record as in replay.
    with start_simulator(scenario.sim_script(source), transport_faults=False) as sim:
        yield sim.base_url, "sk-sim-recording"


def _clients(
    scenario: Scenario, source: str, *, base_url: str, api_key: str, record: bool
) -> list[ModelClient]:
    """The scenario's provider clients (one simulator serves both wires), behind the fault injector."""
    faults = FaultCounter()
    script = scenario.sim_script(source)
    origin = base_url.removesuffix("/v1")
    clients: list[ModelClient] = []
    for name in scenario.providers:
        transport = FaultInjectingTransport(script, counter=faults)
        if name == "anthropic":
            # The simulator's origin (the SDK appends /v1/messages); a real endpoint is never
            # taken from the environment (issue: replay and record are hermetic from the shell).
            clients.append(
                AnthropicMessagesClient(base_url=origin, api_key=api_key, timeout=30, transport=transport)
            )
        else:
            clients.append(
                OpenAIChatClient(base_url=base_url, api_key=api_key, timeout=30, transport=transport)
            )
    return clients


# The wall clock lies by ten years during record and replay; only the clock seam tells the
# scenario's time, so a bypassed seam shows up as a difference instead of agreeing by accident.
WALL_CLOCK_POISON = timedelta(days=3653)


class ScenarioClock:
    """The harness clock seam during record/replay: scenario time, advanced only by the engine."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


@contextmanager
def poisoned_seams(start: datetime) -> Iterator[tuple[ScenarioClock, Any]]:
    """(scenario clock, frozen wall clock): what the seams replace is made to disagree with them.

    The wall clock is frozen ten years after the scenario clock; global ``random`` is reseeded
    from ``os.urandom`` on every run (the seams use their own seeded ``random.Random``), and
    ``uuid4``/``secrets`` already differ per run. Code reading any of them directly yields a
    value that differs from the golden (or between ``--repeat`` runs) at its JSON path.
    """
    saved = random.getstate()
    random.seed(os.urandom(16))
    try:
        with freeze_time(start + WALL_CLOCK_POISON, real_asyncio=True) as frozen:
            yield ScenarioClock(start), frozen
    finally:
        random.setstate(saved)


def _retries_beyond_recorded(tape: Any, diverge: Any) -> Any:
    """A repeat of a recorded request whose answers are all used up is one retry too many.

    It fails like a dropped connection (retryable), so the harness's own retry policy carries
    on and the extra attempt lands in the trace's ``retries`` section as a diff, not only as a
    cassette error; the miss is still noted, so the scenario never passes.
    """
    import httpx

    def check(request: Any) -> Any:
        if tape.__dict__.get("_by_key", {}).get(tape._key(request)):
            path = request.uri.split("://", 1)[-1].partition("/")[2]
            tape.__dict__.setdefault("misses", []).append(
                f"a retry beyond the recorded attempts: POST /{path} was recorded, and every "
                "recorded answer to it has been used (see the `retries` section)"
            )
            raise httpx.ConnectError("no recorded answer left: a retry beyond the recorded attempts")
        return diverge(request)

    return check


@contextmanager
def network_blocked(name: str) -> Iterator[None]:
    """Replay is offline: any socket connect (but Unix sockets) aborts the scenario, named.

    vcrpy only guards the HTTP libraries it patches; this catches everything else, and the
    error is a ``BaseException`` so no SDK or retry layer can turn it into "Connection error.".
    """
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refuse(sock: socket.socket, address: Any) -> Any:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return original_connect(sock, address)
        sock.close()  # the caller never sees an OSError, so it will not close it for us
        raise CassetteMissSignal(
            f"network access attempted during offline replay of {name!r}: connect to {address!r}; "
            "replay never leaves the process (record with `harness-replay record` to talk to a provider)"
        )

    socket.socket.connect = refuse  # type: ignore[method-assign, assignment]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]


def run_scenario(
    scenario: Scenario,
    *,
    name: str,
    source: str,
    cassette: Path,
    record: bool,
    workdir: Path,
    record_mode: RecordMode | None = None,
    endpoint: tuple[str, str] | None = None,
) -> ScenarioRun:
    """Drive every step of ``scenario`` through the real API; return the trace."""
    if not record and not cassette.exists():
        raise CassetteMiss(
            f"scenario {name!r}: no cassette at {cassette}; record it with `harness-replay record {name}`"
        )
    sink = CollectingSink()
    with ExitStack() as stack:
        clock, frozen = stack.enter_context(poisoned_seams(scenario.start_time))
        base_url, api_key = stack.enter_context(_provider(scenario, source, record=record, endpoint=endpoint))
        tape = stack.enter_context(use_cassette(cassette, record=record, mode=record_mode))
        wire = WireWatch()
        tape._before_record_request = wire.wrap(tape._before_record_request)
        if not record:
            tape._diverge = _retries_beyond_recorded(tape, tape._diverge)  # type: ignore[method-assign]
            stack.enter_context(network_blocked(name))
        # From the scenario and defaults only: HARNESS_* in the user's shell must not change a replay.
        try:
            settings = settings_without_environment(
                data_dir=workdir / ".harness",
                database_url=_migrated_db(workdir / ".harness" / "harness.db"),
                seed=scenario.seed,
                provider_base_url=base_url,
                **scenario.settings,
            )
        except ValidationError as exc:  # a bad value under `settings:` in scenario.yaml
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ScenarioError(f"{source}: settings: {problems}") from None
        providers = _clients(scenario, source, base_url=base_url, api_key=api_key, record=record)
        rt = build_runtime(settings, clock=clock, sleeper=RecordingSleeper(), sink=sink, providers=providers)
        stack.callback(rt.close)
        tokens = _seed_tenants(rt, scenario)
        client = stack.enter_context(TestClient(create_app(runtime=rt), raise_server_exceptions=True))
        api: list[dict[str, Any]] = []
        saved: dict[str, str] = {}
        unexpected: list[str] = []
        sent: list[_Sent] = []
        secrets = rt.settings.request_signing_secrets
        signing_secret = secrets[0].get_secret_value().encode() if secrets else None
        try:
            for index, step in enumerate(scenario.steps):
                frozen.tick(1)
                clock.advance(1)
                entry = _perform(
                    client,
                    step,
                    index=index,
                    tokens=tokens,
                    saved=saved,
                    sent=sent,
                    signing_secret=signing_secret,
                    clock=clock,
                )
                api.append(entry)
                if entry["response"]["status"] != step.expect:
                    unexpected.append(
                        f"step {index} ({step.op}): expected HTTP {step.expect}, got "
                        f"{entry['response']['status']}"
                    )
                drain(rt)
        except CassetteMissSignal as miss:
            raise CassetteMiss(f"scenario {name!r}: {miss.message}") from None
        trace = _build_trace(rt, scenario, name=name, api=api, sink=sink)
        audit = trace["audit"]
        misses = tuple(tape.__dict__.get("misses", ()))
        unused = () if record else _unused_interactions(tape)
    return ScenarioRun(
        trace=trace,
        audit=audit,
        unexpected_statuses=tuple(unexpected),
        cassette_misses=misses,
        unused_interactions=unused,
        wire_leaks=tuple(wire.leaks),
    )


def _unused_interactions(tape: Any) -> tuple[str, ...]:
    """``#index METHOD path`` of every recorded interaction this replay never played."""
    from urllib.parse import urlsplit

    return tuple(
        f"#{i} {request.method} {urlsplit(request.uri).path}"
        for i, (request, _) in enumerate(tape.data)
        if tape.play_counts[i] == 0
    )


def _seed_tenants(rt: Runtime, scenario: Scenario) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for tenant in scenario.tenants:
        create_tenant(rt, tenant_id=tenant.id, name=tenant.name or tenant.id, routing=tenant.routing)
        for key_name, roles in tenant.keys.items():
            tokens[key_name] = issue_key(
                rt, tenant_id=tenant.id, name=key_name, roles=roles, principal=tenant.principals.get(key_name)
            ).token
        root = rt.settings.tenant_files_dir / tenant.id
        for rel, text in sorted(tenant.files.items()):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        for link, target in sorted(tenant.symlinks.items()):
            (root / link).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, root / link)
        with unit_of_work(rt.sessions) as session:
            for i, doc in enumerate(tenant.documents):
                session.add(
                    Document(id=f"doc_{tenant.id}_{i}", tenant_id=tenant.id, title=doc.title, body=doc.body)
                )
    return tokens


@dataclass(frozen=True)
class _Sent:
    """A request exactly as it went out (bytes and headers): what a ``replay`` step resends."""

    method: str
    path: str
    content: bytes
    headers: dict[str, str]
    body: Any


def _perform(
    client: TestClient,
    step: StepSpec,
    *,
    index: int,
    tokens: dict[str, str],
    saved: dict[str, str],
    sent: list[_Sent],
    signing_secret: bytes | None,
    clock: ScenarioClock,
) -> dict[str, Any]:
    if step.op == "replay":
        original = sent[step.of] if step.of is not None and 0 <= step.of < len(sent) else None
        if original is None:
            raise ScenarioError(f"step {index}: replay of step {step.of}, which sent nothing replayable")
        request = original
    else:
        request = _build_request(
            step, index=index, tokens=tokens, saved=saved, signing_secret=signing_secret, clock=clock
        )
    sent.append(request)
    response = client.request(
        request.method, request.path, content=request.content or None, headers=request.headers
    )
    method, path, request_body = request.method, request.path, request.body
    try:
        response_body: Any = response.json()
    except ValueError:
        response_body = response.text
    if step.save and response.status_code == 202:
        saved[step.save] = response_body["run_id"]
    pending = response_body.get("pending_approval") if isinstance(response_body, dict) else None
    if step.op == "status" and step.run and pending:  # what an approver saw: approve names it
        saved[f"{step.run}:approval_id"], saved[f"{step.run}:args_sha256"] = (
            pending["id"],
            pending["args_sha256"],
        )
    kept = {
        k: v
        for k, v in response.headers.items()
        if k.lower() in {"idempotent-replayed", "retry-after", "location"}
    }
    # The client's own input is redacted here; what the harness answered is not, so a response
    # that leaks shows up as [LEAKED:...] in the final pass (replay.leak_marking).
    entry: dict[str, Any] = {
        "step": index,
        "op": step.op,
        "as": step.as_,
        "request": redact_data({"method": method, "path": path, "body": request_body}),
        "response": {"status": response.status_code, "headers": kept, "body": response_body},
    }
    return entry


def _build_request(
    step: StepSpec,
    *,
    index: int,
    tokens: dict[str, str],
    saved: dict[str, str],
    signing_secret: bytes | None,
    clock: ScenarioClock,
) -> _Sent:
    headers = dict(step.headers)
    if step.as_ is not None:
        headers["Authorization"] = f"Bearer {tokens[step.as_]}"
    run_id = saved.get(step.run, step.run) if step.run else None
    method, path, body = _request_for(step, run_id, saved)
    if step.raw_body is not None:
        content, shown = step.raw_body.encode(), step.raw_body
    elif body is not None:
        content, shown = json.dumps(body, ensure_ascii=False).encode(), body
    else:
        content, shown = b"", None
    if content:
        headers.setdefault("Content-Type", "application/json")
    if step.sign:
        if signing_secret is None:
            raise ScenarioError(f"step {index} is signed but settings.request_signing_secrets is empty")
        # Time comes from the frozen clock; the nonce is a function of the step: both reproducible.
        headers.update(
            signature_headers(
                signing_secret,
                method,
                path,
                content,
                timestamp=int(clock.now().timestamp()),
                nonce=f"scenario-step-{index:04d}",
                key_id=key_id_of_token(tokens[step.as_]) if step.as_ is not None else "",
            )
        )
    return _Sent(method, path, content, headers, shown)


def _request_for(step: StepSpec, run_id: str | None, saved: dict[str, str]) -> tuple[str, str, Any]:
    if step.op == "run":
        return "POST", "/api/harness/run", step.body
    if step.op in {"approve", "reject"}:
        # The pending action the last status step of this run showed (none shown: the API says 422,
        # which a golden then pins; add a status step before the decision to name it).
        fields = ("approval_id", "args_sha256")
        shown = {f: saved[f"{step.run}:{f}"] for f in fields if f"{step.run}:{f}" in saved}
        body = step.body or {"run_id": run_id, "decision": step.op, "reason": step.reason, **shown}
        return "POST", "/api/harness/approve", body
    if step.op == "status":
        return "GET", f"/api/harness/runs/{run_id}", None
    if step.op == "artifact":
        return "GET", f"/api/harness/runs/{run_id}/artifacts/{step.artifact}", None
    if step.method is None or step.path is None:
        raise ScenarioError(f"step {step.op!r} needs method and path")
    path = step.path
    for label, value in saved.items():
        path = path.replace("{" + label + "}", value)
    return step.method, path, step.body


def _build_trace(
    rt: Runtime, scenario: Scenario, *, name: str, api: list[dict[str, Any]], sink: CollectingSink
) -> dict[str, Any]:
    with unit_of_work(rt.sessions) as session:
        runs = session.execute(select(Run).order_by(Run.created_at, Run.id)).scalars().all()
        order = {run.id: i for i, run in enumerate(runs)}
        transitions = sorted(
            session.execute(select(RunTransition)).scalars(), key=lambda t: (order[t.run_id], t.seq)
        )
        steps = sorted(
            session.execute(select(Step).where(Step.kind == "tool_call")).scalars(),
            key=lambda s: (order[s.run_id], s.seq),
        )
        approvals = sorted(
            session.execute(select(Approval)).scalars(), key=lambda a: (order[a.run_id], a.requested_at, a.id)
        )
        artifacts = sorted(
            session.execute(select(Artifact)).scalars(), key=lambda a: (order[a.run_id], a.path)
        )
        audit = load_entries(session)
        trace = {
            "format_version": TRACE_FORMAT_VERSION,
            "scenario": {
                "name": name,
                "description": scenario.description,
                "harness_version": __version__,
                "templates": list(TEMPLATE_NAMES),
                "models": sorted({r.model for r in runs}),
                "seed": scenario.seed,
                "start_time": scenario.start_time.isoformat(),
            },
            "api": api,
            "prompts": [
                {
                    "call": e.call,
                    "run": e.run_id,
                    "provider": e.provider,
                    "model": e.model,
                    "temperature": e.temperature,
                    "seed": e.seed,
                    "messages": e.messages,
                    "tools": [t["function"]["name"] for t in e.tools],
                    "guard": e.guard,
                }
                for e in sink.of_type(PromptSent)
            ],
            "transitions": [
                {
                    "run": t.run_id,
                    "seq": t.seq,
                    "from": t.from_status,
                    "to": t.to_status,
                    "reason": t.reason,
                    "at": t.at,
                    "actor": t.actor,
                }
                for t in transitions
            ],
            "tool_calls": [
                {
                    "run": s.run_id,
                    "seq": s.seq,
                    "name": s.name,
                    "args": s.input.get("args"),
                    "outcome": s.outcome,
                    "result_sha256": sha256_hex(s.output["content"].encode()),
                }
                for s in steps
            ],
            "approvals": [
                {
                    "run": a.run_id,
                    "action": a.action,
                    "args_sha256": a.args_sha256,
                    "decision": a.status,
                    "decided_by": a.decided_by,
                    "reason": a.reason,
                    "requested_at": a.requested_at,
                    "decided_at": a.decided_at,
                }
                for a in approvals
            ],
            "retries": [
                {
                    "run": e.run_id,
                    "call": e.call,
                    "provider": e.provider,
                    "attempt": e.attempt,
                    "error": e.error,
                    "sleep_seconds": e.sleep_seconds,
                }
                for e in sink.of_type(RetryScheduled)
            ],
            "audit": audit,
            "artifacts": [
                {
                    "run": a.run_id,
                    "path": a.path,
                    "size": a.size,
                    "sha256": a.sha256,
                    "content": Path(a.storage_path).read_text(encoding="utf-8"),
                }
                for a in artifacts
            ],
            "final": {"runs": {r.id: r.status for r in runs}},
        }
    # Whatever reached the trace unredacted is marked [LEAKED:<type>] (never kept raw), so a
    # sink that stops redacting fails its golden in that sink's section.
    scrubbed: dict[str, Any] = json.loads(json.dumps(redact_data(mark_leaks(trace))))
    return scrubbed
