"""Golden hygiene in the gate: strays, pending updates and unused cassette interactions."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.integrity import load_signer
from replay.gate import Unreferenced, check
from replay.results import ScenarioStatus
from replay.signing import append_approval, sign_golden
from replay.store import GoldenStore
from tests.support.goldens import scratch_project

pytestmark = [pytest.mark.tier1]

ROOT = Path(__file__).resolve().parents[2]
NAME = "rejection"  # one provider call: cheap to replay


@pytest.fixture
def project(tmp_path: Path) -> GoldenStore:
    """A project holding only one golden (plus keys and trust policy), so a full check is quick."""
    return GoldenStore(scratch_project(tmp_path, NAME))


def _gate_problems(outcome: object) -> str:
    results = outcome.results  # type: ignore[attr-defined]
    return " ".join(r.message for r in results if r.name == "(goldens)")


def test_a_clean_project_passes(project: GoldenStore) -> None:
    outcome = check(project, ci=True, unreferenced=Unreferenced.REJECT)
    assert outcome.ok, [r.message for r in outcome.results]
    assert outcome.warnings == ()


def test_stray_file_in_a_named_scenario_fails_check_name(project: GoldenStore) -> None:
    stray = project.paths(NAME).folder / "notes.txt"
    stray.write_text("left behind\n")
    outcome = check(project, [NAME], ci=True)
    assert not outcome.ok
    assert f"goldens/{NAME}/notes.txt" in _gate_problems(outcome)


def test_check_name_does_not_report_other_scenarios_strays(project: GoldenStore) -> None:
    (project.cassettes_dir / "ghost.yaml").write_text("harness_cassette_format: 1\ninteractions: []\n")
    assert check(project, [NAME], ci=True).ok
    full = check(project, ci=True)
    assert not full.ok and "cassettes/ghost.yaml" in _gate_problems(full)


def test_pending_update_fails_under_ci_even_in_warn_mode(project: GoldenStore) -> None:
    paths = project.paths(NAME)
    shutil.copy2(paths.trace, paths.trace_new)
    relaxed = check(project, ci=False, unreferenced=Unreferenced.WARN)
    assert relaxed.ok and any("pending update" in w for w in relaxed.warnings)
    strict = check(project, ci=True, unreferenced=Unreferenced.WARN)
    assert not strict.ok
    assert f"pending update for {NAME}" in _gate_problems(strict)


def _add_unused_interaction(project: GoldenStore) -> None:
    cassette = project.paths(NAME).cassette
    data = yaml.safe_load(cassette.read_text())
    extra = yaml.safe_load(yaml.safe_dump(data["interactions"][0]))
    extra["request"]["body"] = extra["request"]["body"].replace("Draft a memo", "Draft a poem")
    data["interactions"].append(extra)
    cassette.write_text(yaml.safe_dump(data, sort_keys=True, allow_unicode=True, width=100))
    # The cassette is bound by the signature and the approval: approve the edit like a reviewer.
    signer = load_signer(ROOT / "goldens" / "keys" / "DEMO-ONLY-signing-key.pem")
    sign_golden(project, NAME, signer=signer)
    append_approval(
        project,
        NAME,
        signer=signer,
        approver="t",
        reason="t",
        old_trace_sha256=None,
        at="2026-01-01T09:00:00Z",
    )


def test_unused_interaction_is_a_warning_by_default(project: GoldenStore) -> None:
    _add_unused_interaction(project)
    outcome = check(project, ci=True)
    assert outcome.ok
    assert outcome.results[0].status is ScenarioStatus.PASSED
    [warning] = outcome.warnings
    assert f"cassettes/{NAME}.yaml has 1 recorded interaction(s) that replay never used" in warning
    assert "#1 POST /v1/chat/completions" in warning


def test_unused_interaction_fails_with_explicit_reject(project: GoldenStore) -> None:
    _add_unused_interaction(project)
    outcome = check(project, ci=True, unreferenced=Unreferenced.REJECT)
    assert not outcome.ok
    assert "never used" in _gate_problems(outcome)


def test_make_test_runs_the_full_gate_once() -> None:
    """The PR gate replays goldens through `harness-replay check` (strict) and `verify`, not pytest items."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed; the PR gate needs it")
    dry = subprocess.run(
        [make, "-n", "-C", str(ROOT), "test"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    pytest_lines = [line for line in dry.splitlines() if "-m pytest" in line]
    assert pytest_lines and all("--ignore=goldens" in line for line in pytest_lines)
    check_lines = [line for line in dry.splitlines() if "harness-replay check" in line]
    assert len(check_lines) == 1
    assert "CI=true" in check_lines[0] and "--unreferenced reject" in check_lines[0]
    assert len([line for line in dry.splitlines() if "harness-replay verify" in line]) == 1
