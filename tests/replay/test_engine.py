"""The replay engine against the real shipped goldens: detection, localisation, nondeterminism, misses."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness.orchestrator import prompts
from replay.gate import check
from replay.report import render_text
from replay.results import DiffClass, ScenarioStatus
from replay.store import GoldenStore

pytestmark = [pytest.mark.tier1]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> GoldenStore:
    """A private copy of goldens/ and cassettes/ so tests may write .new files."""
    for folder in ("goldens", "cassettes"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return GoldenStore(tmp_path)


def _edited_templates(tmp_path: Path, old: str, new: str) -> Path:
    copy = tmp_path / "templates"
    shutil.copytree(prompts.TEMPLATES_DIR, copy)
    system = copy / "system.v1.j2"
    text = system.read_text()
    assert old in text
    system.write_text(text.replace(old, new, 1))
    return copy


def test_all_shipped_goldens_replay_clean(project: GoldenStore) -> None:
    outcome = check(project, ci=True)
    assert outcome.ok, render_text(list(outcome.results))
    assert len(outcome.results) >= 8


def test_one_word_in_the_system_prompt_is_a_named_content_regression(
    project: GoldenStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jinja2 import FileSystemLoader

    loader = FileSystemLoader(_edited_templates(tmp_path, "only the tools", "only the approved tools"))
    monkeypatch.setattr(prompts._env, "loader", loader)
    prompts._env.cache.clear() if prompts._env.cache else None
    outcome = check(project, ["happy_path_with_approval"], ci=False)
    result = outcome.results[0]
    assert result.status is ScenarioStatus.REGRESSED
    assert result.diff is not None
    prompt_diffs = [d for d in result.diff.differences if d.section == "prompts"]
    assert prompt_diffs and all(d.klass is DiffClass.CONTENT for d in prompt_diffs)
    first_screen = "\n".join(render_text([result]).splitlines()[:40])
    assert "happy_path_with_approval" in first_screen
    assert "prompts" in first_screen
    assert "approved" in first_screen
    assert (project.paths("happy_path_with_approval").trace_new).exists()


def test_ci_mode_never_writes_new_files(
    project: GoldenStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jinja2 import FileSystemLoader

    monkeypatch.setattr(
        prompts._env, "loader", FileSystemLoader(_edited_templates(tmp_path, "short summary", "long summary"))
    )
    prompts._env.cache.clear() if prompts._env.cache else None
    outcome = check(project, ["happy_path_with_approval"], ci=True)
    assert outcome.results[0].status is ScenarioStatus.REGRESSED
    assert not project.paths("happy_path_with_approval").trace_new.exists()


def test_a_changed_transition_reason_is_structural(
    project: GoldenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transitions are orchestration: even their reason text is classed structural."""
    from harness.runs import service

    original = service.transition

    def renamed(session: Any, rt: Any, run: Any, target: Any, *, reason: str, actor: str) -> None:
        if target == "RUNNING" and run.status == "PENDING":
            reason = "started by the worker"
        original(session, rt, run, target, reason=reason, actor=actor)

    monkeypatch.setattr(service, "transition", renamed)
    import harness.orchestrator.loop as loop

    monkeypatch.setattr(loop, "transition", renamed)
    result = check(project, ["rejection"], ci=True).results[0]
    assert result.status is ScenarioStatus.REGRESSED
    assert result.diff is not None
    assert any(
        d.section == "transitions" and d.klass is DiffClass.STRUCTURAL for d in result.diff.differences
    )


def test_a_bypassed_approval_gate_is_a_structural_regression(
    project: GoldenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reorder the code path so the side effect runs before (without) the human gate."""
    import harness.orchestrator.loop as loop
    from harness.database.models import Approval

    original = loop._gated_side_effect

    def no_gate(session: Any, rt: Any, run: Any, *, tool_call_id: str, name: str, args: Any) -> Any:
        digest = loop.digest({"tool": name, "args": args})
        session.add(
            Approval(
                id=rt.ids.new("apr"),
                run_id=run.id,
                action=name,
                args=args,
                args_sha256=digest,
                tool_call_id=tool_call_id,
                status="approved",
                requested_at="-",
            )
        )
        session.flush()
        return original(session, rt, run, tool_call_id=tool_call_id, name=name, args=args)

    monkeypatch.setattr(loop, "_gated_side_effect", no_gate)
    result = check(project, ["happy_path_with_approval"], ci=True).results[0]
    assert result.status is ScenarioStatus.REGRESSED
    assert result.diff is not None
    transitions = [d for d in result.diff.structural if d.section == "transitions"]
    assert any(d.change == "removed" and "AWAITING_APPROVAL" in json.dumps(d.old) for d in transitions), (
        transitions
    )
    text = render_text([result])
    assert text.index("STRUCTURAL") < text.index("CONTENT")


def test_nondeterminism_detector_fires_on_an_unseeded_read(
    project: GoldenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = prompts.render

    def leaky(name: str, **values: Any) -> str:
        return original(name, **values) + f"request nonce {uuid.uuid4()}\n"  # not through the seams

    monkeypatch.setattr(prompts, "render", leaky)
    result = check(project, ["multi_tool_run"], repeat=3, ci=True).results[0]
    assert result.status is ScenarioStatus.NONDETERMINISTIC
    assert result.diff is not None and any(d.section == "prompts" for d in result.diff.differences)


def test_repeat_finds_no_nondeterminism_in_shipped_goldens(project: GoldenStore) -> None:
    outcome = check(project, ["happy_path_with_approval", "provider_error"], repeat=3, ci=True)
    assert outcome.ok, render_text(list(outcome.results))


def test_cassette_miss_names_scenario_request_and_nearest(
    project: GoldenStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jinja2 import FileSystemLoader

    # A changed prompt is a different request: the cassette has no answer for it.
    monkeypatch.setattr(
        prompts._env,
        "loader",
        FileSystemLoader(_edited_templates(tmp_path, "harness assistant", "harness helper")),
    )
    prompts._env.cache.clear() if prompts._env.cache else None
    cassette = project.paths("happy_path_with_approval").cassette
    text = cassette.read_text()
    # Keep the golden trace as is; what matters is the replay error.
    result = check(project, ["happy_path_with_approval"], ci=True).results[0]
    assert cassette.read_text() == text
    # A miss with a same-route counterpart keeps replaying by position, so the trace diff can
    # localise the change; the scenario is a regression whose message names the miss.
    assert result.status is ScenarioStatus.REGRESSED
    assert result.diff is not None and any(d.section == "prompts" for d in result.diff.differences)
    assert "happy_path_with_approval" in result.message
    assert "were not in the cassette" in result.message
    assert "no recorded answer for POST /v1/chat/completions" in result.message
    assert "nearest recorded request" in result.message
    assert '-      "content": "You are the harness assistant for tenant' in result.message
    assert '+      "content": "You are the harness helper for tenant' in result.message
    assert "Connection error" not in result.message


def test_cassette_miss_without_a_counterpart_is_an_error_naming_scenario_and_request(
    project: GoldenStore,
) -> None:
    cassette = project.paths("happy_path_with_approval").cassette
    text = cassette.read_text()
    assert "/v1/chat/completions" in text
    cassette.write_text(text.replace("/v1/chat/completions", "/v1/elsewhere"))
    result = check(project, ["happy_path_with_approval"], ci=True).results[0]
    assert result.status is ScenarioStatus.ERROR
    assert "scenario 'happy_path_with_approval'" in result.message
    assert "no recorded answer for POST /v1/chat/completions" in result.message
    assert "it holds no POST /v1/chat/completions at all" in result.message
    assert "Connection error" not in result.message


def test_tampered_golden_fails_the_gate(project: GoldenStore) -> None:
    audit = project.paths("rejection").audit
    audit.write_text(audit.read_text().replace("not appropriate", "appropriate"))
    result = check(project, ["rejection"], ci=True).results[0]
    assert result.status is ScenarioStatus.ERROR
    assert "signature" in result.message


def test_unreferenced_cassette_fails_the_gate(project: GoldenStore) -> None:
    (project.cassettes_dir / "ghost.yaml").write_text("harness_cassette_format: 1\ninteractions: []\n")
    outcome = check(project, ci=True)
    assert not outcome.ok
    assert any("ghost.yaml" in r.message for r in outcome.results)


def test_cli_exit_codes(project: GoldenStore) -> None:
    cli = Path(sys.executable).parent / "harness-replay"
    ok = subprocess.run(
        [str(cli), "check", "--root", str(project.root), "--allow-demo-key", "bad_requests"],
        check=False,
        capture_output=True,
        text=True,
        env={"CI": "true", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 scenarios: 1 passed" in ok.stdout or "1 passed" in ok.stdout
    usage = subprocess.run(
        [str(cli), "check", "--root", str(project.root), "no_such_scenario"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert usage.returncode == 2
    assert usage.stderr.startswith("error: no scenario named no_such_scenario")
    verify = subprocess.run(
        [str(cli), "verify", "--root", str(project.root), "--allow-demo-key"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout
    assert "verified" in verify.stdout


def test_replay_is_offline_even_for_unpatched_clients(
    project: GoldenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raw socket (which vcrpy does not see) during replay aborts the scenario with a named error."""
    import socket

    import harness.orchestrator.loop as loop

    original = loop.retrieve

    def phoning_home(*args: Any, **kwargs: Any) -> Any:
        socket.create_connection(("127.0.0.1", 9), timeout=1)
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "retrieve", phoning_home)
    result = check(project, ["multi_tool_run"], ci=True).results[0]
    assert result.status is ScenarioStatus.ERROR
    assert "network access attempted during offline replay of 'multi_tool_run'" in result.message
    assert "127.0.0.1" in result.message
