"""Security regression set: secret leakage in committed recordings, logs, traces and artifacts.

``harness.redaction.find_secrets`` is the scanner throughout. Three sources are scanned:
every file under ``cassettes/`` and ``goldens/``; every surface of a live run whose model
output and tool results carry synthetic secrets (API responses, logs, stored prompts, audit
payloads, approvals, artifacts on disk, events, what the provider was sent); and a trace
freshly replayed from the ``secret_in_tool_result`` cassette. A canary run with the redactor
switched off proves the scan finds those same secrets when they are there.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy import select

from harness.database.connect import unit_of_work
from harness.database.models import Approval, AuditEntry, Run, RunTransition, Step
from harness.events import event_to_dict
from harness.observability import configure_logging
from harness.redaction import find_secrets
from replay.engine import run_scenario
from replay.scenario import load_scenario
from tests.support.api import World, world
from tests.support.security import dumps, scan_data, secret_findings

pytestmark = [pytest.mark.tier1, pytest.mark.security]

REPO = Path(__file__).resolve().parents[2]
SCANNED_ROOTS = ("cassettes", "goldens")
# Files allowed to hold a secret. Exactly one: the demo signing key committed on purpose.
ALLOWLIST = frozenset({"goldens/keys/DEMO-ONLY-signing-key.pem"})
# Scenario files are inputs, written by hand to plant synthetic secrets; they may hold only
# these values, and no recorded file (cassette, trace, audit, approvals) may hold them at all.
SCENARIO_SYNTHETIC = {
    "goldens/secret_in_tool_result/scenario.yaml": {"AKIAZ7QXEXAMPLE4D2XQ", "hunter2-synthetic"},
    "goldens/secret_in_task/scenario.yaml": {"sk_live_FAKEgoldenTask0123456789"},
    "goldens/secret_in_approval_reason/scenario.yaml": {
        "AKIAZ7QXFAKEGOLDEN01",
        "ghp_FAKEgoldenReason0123456789abcdefABCD",
    },
    # bare tokens: no text rule finds them, so the recorded files are checked for them by value
    "goldens/secret_tool_argument/scenario.yaml": {
        "RFRunzqw7wZyVGOeUvfJIssDj4PTTKtb2TxxDBfz",
        "5LJF3hBGZW3M4Fz6Hq2AK7EGHZbKoXi0d9TH4QgT",
    },
    "goldens/provider_failover_to_anthropic/scenario.yaml": {"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
    "goldens/secret_in_provider_error/scenario.yaml": {
        "ghp_SyntheticTokenAbcdefghijklmnopqrstuvwxyz0123",
        "ASIAQ3EXAMPLE7SYNTHX",
    },
    "goldens/aws_key_variants_in_artifacts/scenario.yaml": {
        "ASIAY4SYNTHETIC0KEY1",
        "ABIAY4SYNTHETIC0KEY2",
        "ACCAY4SYNTHETIC0KEY3",
        "A3TXY4SYNTHETIC0KEY4",
    },
}
STRUCTURED = (".json", ".jsonl", ".yaml", ".yml")

DATA = Path(__file__).parent / "data"
SCRIPT = DATA / "secret_run_script.yaml"
# every synthetic secret of the live run, in the model's output, tool results and tool args
SYNTHETIC = (
    "AKIAZ7QXSYNTH3TIC0K1",
    "ghp_SynthEticT0kenForHarnessTests0123456",
    "sk_live_SynthStripe0123456789ab",
    "xoxb-1234567890-synthetic-slack",
    "Synth-Pa55word",
    "sk-proj-SynthOpenAIkey0123456789abcdef",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSYNTHETIC",
)
DEPLOY_ENV = (
    "AWS_ACCESS_KEY_ID=AKIAZ7QXSYNTH3TIC0K1\n"
    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYSYNTHETIC\n"
    "DATABASE_URL=postgres://app:Synth-Pa55word@db.internal:5432/prod\n"
    "SLACK_BOT_TOKEN=xoxb-1234567890-synthetic-slack\n"
)
TASK = "Audit the deployment config in deploy.env"


# --- committed recordings ----------------------------------------------------------------------


def _scanned_files() -> list[Path]:
    return sorted(
        p
        for root in SCANNED_ROOTS
        for p in (REPO / root).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def _findings_in_file(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix not in STRUCTURED:
        return secret_findings(text)
    # string by string, as the redactor sees data: "secret" in one field must not make
    # a signature in the next field look like a secret
    if path.suffix == ".jsonl":
        return [f for line in text.splitlines() if line.strip() for f in scan_data(json.loads(line))]
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return scan_data(data)


def test_allowlist_is_exactly_the_demo_signing_key() -> None:
    assert sorted(ALLOWLIST) == ["goldens/keys/DEMO-ONLY-signing-key.pem"]
    (only,) = ALLOWLIST
    pem = (REPO / only).read_bytes()
    assert [f.type for f in find_secrets(pem.decode())] == ["private_key"]
    load_pem_private_key(pem, password=None)  # really a key, not a file that merely looks like one


def test_cassettes_and_goldens_hold_no_secret() -> None:
    files = _scanned_files()
    assert len(files) > 20, "nothing to scan: wrong root?"
    rel = {p.relative_to(REPO).as_posix() for p in files}
    assert rel >= ALLOWLIST | SCENARIO_SYNTHETIC.keys(), "an allowlisted path no longer exists"

    leaks: list[str] = []
    recorded_text: list[tuple[str, str]] = []
    for path in files:
        name = path.relative_to(REPO).as_posix()
        if name in ALLOWLIST:
            continue
        if name in SCENARIO_SYNTHETIC:
            planted = SCENARIO_SYNTHETIC[name]
            text = path.read_text(encoding="utf-8")
            leaks += [
                f"{name}: {text[f.start : f.end]!r} is not a declared synthetic secret"
                for f in find_secrets(text)
                if not any(value in text[f.start : f.end] for value in planted)
            ]
            continue
        leaks += [f"{name}: {finding}" for finding in _findings_in_file(path)]
        recorded_text.append((name, path.read_text(encoding="utf-8", errors="replace")))
    for value in set().union(*SCENARIO_SYNTHETIC.values()):
        leaks += [f"{name}: planted {value!r} was recorded" for name, text in recorded_text if value in text]
    assert leaks == [], "secrets in committed recordings:\n  " + "\n  ".join(leaks)


# --- a live run --------------------------------------------------------------------------------


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """configure_logging() at DEBUG into a buffer; root logger and structlog restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(stream=stream, level="DEBUG")
    yield stream
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved_level)
    structlog.reset_defaults()


@pytest.fixture
def w(make_runtime: Any, sqlite_database_url: str) -> Iterator[World]:
    with world(make_runtime, sqlite_database_url, script=SCRIPT) as it:
        (it.rt.settings.tenant_files_dir / "acme" / "deploy.env").write_text(DEPLOY_ENV)
        yield it


def _leaky_run(w: World, log_stream: io.StringIO) -> dict[str, str]:
    """Drive the leaky run to its end; every surface it left behind, as text."""
    responses = [w.post("run", "alice", {"task": TASK})]
    run_id = responses[0].json()["run_id"]
    w.drain()
    responses.append(w.get(f"runs/{run_id}", "alice"))
    responses.append(w.post("approve", "bob", w.decision(run_id, "approve", "ok")))
    w.drain()
    responses.append(w.get(f"runs/{run_id}", "carol"))
    responses.append(w.get(f"runs/{run_id}/artifacts/audit.md", "alice"))
    assert [r.status_code for r in responses] == [202, 200, 200, 200, 200], [r.text for r in responses]
    assert responses[3].json()["status"] == "SUCCEEDED"

    with unit_of_work(w.rt.sessions) as session:
        steps = [(s.input, s.output) for s in session.execute(select(Step)).scalars()]
        audit = [(a.action, a.target, a.payload) for a in session.execute(select(AuditEntry)).scalars()]
        approvals = [a.args for a in session.execute(select(Approval)).scalars()]
        run = session.get_one(Run, run_id)
        history = [run.error, *(t.reason for t in session.execute(select(RunTransition)).scalars())]
    artifacts = [p.read_text() for p in sorted(w.rt.settings.artifacts_dir.rglob("*")) if p.is_file()]
    assert artifacts, "the artifact was not written"
    return {
        "api responses": "\n".join(r.text for r in responses),
        "logs": log_stream.getvalue(),
        "steps (stored prompts and results)": dumps(steps),
        "audit payloads": dumps(audit),
        "approval args": dumps(approvals),
        "run error and transitions": dumps(history),
        "artifacts on disk": "\n".join(artifacts),
        "events": dumps([event_to_dict(e) for e in w.rt.sink.events]),  # type: ignore[attr-defined]
        "provider requests": dumps([r.body for r in w.sim.requests]),
    }


def _exposed(text: str) -> list[str]:
    """Synthetic secrets in ``text``, raw or as the JSON renderer escapes them."""
    return [s for s in SYNTHETIC if s in text or json.dumps(s)[1:-1] in text]


def test_the_synthetic_secrets_are_ones_the_scanner_knows() -> None:
    for secret in SYNTHETIC:
        assert find_secrets(f"token = {secret}"), secret


def test_live_run_leaves_no_secret_on_any_surface(w: World, log_stream: io.StringIO) -> None:
    surfaces = _leaky_run(w, log_stream)

    for name, text in surfaces.items():
        assert _exposed(text) == [], f"{name} leaked {_exposed(text)}"
    # redaction happened (not merely nothing flowed): markers where the secrets went
    for name in ("steps (stored prompts and results)", "approval args", "artifacts on disk", "api responses"):
        assert "[REDACTED:" in surfaces[name], f"no redaction marker in {name}"
    assert "[REDACTED:" in surfaces["audit payloads"], "the refused tool path was audited unredacted?"
    assert "[REDACTED:" in surfaces["provider requests"], "tool results re-entered the prompt unredacted?"


REDACTING_MODULES = (
    "harness.orchestrator.loop",
    "harness.secret_shape",
    "harness.artifacts",
    "harness.audit",
    "harness.api.problems",
    "harness.jobs.worker",
)


def test_canary_scan_finds_the_secrets_when_redaction_is_bypassed(
    w: World, log_stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same run with the redactor replaced by identity: the scan above must light up."""
    for module in REDACTING_MODULES:
        for name in ("redact", "redact_data"):
            monkeypatch.setattr(f"{module}.{name}", lambda value: value, raising=False)
    surfaces = _leaky_run(w, log_stream)

    must_leak = (
        "steps (stored prompts and results)",
        "approval args",
        "artifacts on disk",
        "api responses",
        "audit payloads",
        "provider requests",
        "events",
    )
    for name in must_leak:
        assert _exposed(surfaces[name]), f"canary: {name} shows no secret even unredacted"
        assert secret_findings(surfaces[name]), f"canary: find_secrets misses the secrets in {name}"


def _failing_tool(*_args: Any, **_kwargs: Any) -> str:
    raise RuntimeError(f"read failed half-way; buffer was: {DEPLOY_ENV}")


def _crash_a_job(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tool crashes with the file's secrets in its message: the worker logs the failure."""
    monkeypatch.setattr("harness.orchestrator.loop.run_read_only", _failing_tool)
    assert w.post("run", "alice", {"task": TASK}).status_code == 202
    w.drain()


def test_job_failure_log_lines_are_scrubbed(
    w: World, log_stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    _crash_a_job(w, monkeypatch)
    logs = log_stream.getvalue()
    failures = [json.loads(line) for line in logs.splitlines() if '"job failed"' in line]
    assert failures, "the crash was not logged"
    assert _exposed(logs) == []
    assert "[REDACTED:aws_access_key_id]" in failures[0]["error"]


def test_canary_log_scan_finds_the_secrets_when_the_log_redactor_is_bypassed(
    w: World, log_stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("harness.jobs.worker.redact", lambda value: value)
    monkeypatch.setattr("harness.observability.redact_event", lambda _logger, _name, event: event)
    configure_logging(stream=log_stream, level="DEBUG")  # rebuild the chain with the bypass
    _crash_a_job(w, monkeypatch)
    assert _exposed(log_stream.getvalue()), "canary: the unscrubbed crash shows no secret"
    assert secret_findings(log_stream.getvalue())


# --- a freshly replayed golden trace -----------------------------------------------------------


def test_freshly_replayed_trace_of_secret_in_tool_result_is_clean(tmp_path: Path) -> None:
    path = REPO / "goldens" / "secret_in_tool_result" / "scenario.yaml"
    result = run_scenario(
        load_scenario(path),
        name="secret_in_tool_result",
        source=str(path),
        cassette=REPO / "cassettes" / "secret_in_tool_result.yaml",
        record=False,
        workdir=tmp_path,
    )
    assert result.unexpected_statuses == () and result.cassette_misses == ()
    trace = result.trace_bytes.decode()
    planted = SCENARIO_SYNTHETIC["goldens/secret_in_tool_result/scenario.yaml"]
    assert [s for s in planted if s in trace] == []
    assert scan_data(result.trace) == []
    assert "[REDACTED:aws_access_key_id]" in trace
    assert "[REDACTED:database_url]" in trace
