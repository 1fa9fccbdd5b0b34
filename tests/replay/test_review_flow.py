"""One flow from "replay failed" to "approved": stale cassettes are re-recorded before signing,
forged updates are not signed, and `record` only ever proposes `.new` files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.goldens import scratch_project

pytestmark = [pytest.mark.tier1, pytest.mark.timeout(300)]  # several real record/replay runs each

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "harness-replay"
DEMO_KEY = ROOT / "goldens" / "keys" / "DEMO-ONLY-signing-key.pem"
NAME = "rejection"  # one provider call: the cheapest full review cycle


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return scratch_project(tmp_path, NAME)


def run(project: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "OPENAI_BASE_URL", "OPENAI_API_KEY"}}
    env.update({"HARNESS_SIGNING_KEY": str(DEMO_KEY), "HARNESS_APPROVER": "Test Reviewer"})
    extra = ("--allow-demo-key",) if args[0] in {"check", "verify"} else ()
    return subprocess.run(
        [str(CLI), *args, *extra, "--root", str(project)],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def change_prompt(project: Path) -> None:
    scenario = project / "goldens" / NAME / "scenario.yaml"
    text = scenario.read_text()
    old = 'task: "Draft a memo"'
    assert old in text
    scenario.write_text(text.replace(old, 'task: "Draft a memo, please"'))


def test_accepting_a_prompt_change_rerecords_the_cassette_before_signing(project: Path) -> None:
    change_prompt(project)
    regressed = run(project, "check", NAME)
    assert regressed.returncode == 1
    assert "not in the cassette" in regressed.stdout
    cassette_before = (project / "cassettes" / f"{NAME}.yaml").read_text()
    first = run(project, "accept", NAME, "--reason", "politer task")
    # The provider saw a different prompt: the cassette is re-recorded and both diffs are shown.
    # The simulator's answer differs (usage counts the longer prompt), so nothing is signed yet.
    assert first.returncode == 1, first.stdout + first.stderr
    assert "does not match its cassette (" in first.stdout
    assert "provider request(s) not in the cassette); re-recorded it" in first.stdout
    assert "trace diff (golden -> re-recorded):" in first.stdout and "prompt_tokens" in first.stdout
    assert "cassette diff (golden -> re-recorded):" in first.stdout
    assert "+  request: " in first.stdout and "please" in first.stdout
    assert "not signing" in first.stdout
    assert (project / "cassettes" / f"{NAME}.yaml").read_text() == cassette_before
    accepted = run(project, "accept", NAME, "--reason", "politer task")  # having seen it, accept
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "does not match its cassette" not in accepted.stdout
    assert f"accepted {NAME}" in accepted.stdout
    assert (project / "cassettes" / f"{NAME}.yaml").read_text() != cassette_before
    # No stale cassette: the next check passes and the approval verifies (it binds the new cassette).
    assert run(project, "check", NAME).returncode == 0
    verified = run(project, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_hand_forged_update_is_not_signed(project: Path) -> None:
    trace = json.loads((project / "goldens" / NAME / "trace.json").read_text())
    trace["final"]["runs"] = {run_id: "SUCCEEDED" for run_id in trace["final"]["runs"]} | {
        "run_x": "SUCCEEDED"
    }
    forged = project / "goldens" / NAME / "trace.json.new"
    forged.write_text(json.dumps(trace, indent=2, sort_keys=True) + "\n")
    approvals = (project / "goldens" / NAME / "approvals.jsonl").read_text()
    accepted = run(project, "accept", NAME)
    assert accepted.returncode == 1
    assert "trace.json.new is not what the scenario replays to: edited by hand?" in accepted.stdout
    assert "differs from the trace.json.new you reviewed; not signing" in accepted.stdout
    assert (project / "goldens" / NAME / "approvals.jsonl").read_text() == approvals


def test_record_only_proposes_new_files(project: Path) -> None:
    golden = {
        p.name: p.read_bytes()
        for p in (project / "goldens" / NAME).iterdir()
        if p.name != "scenario.yaml"
    }
    unchanged = run(project, "record", NAME)
    assert unchanged.returncode == 0, unchanged.stderr
    assert f"{NAME}: unchanged" in unchanged.stdout
    assert not (project / "goldens" / NAME / "trace.json.new").exists()
    change_prompt(project)
    recorded = run(project, "record", NAME)
    assert recorded.returncode == 0, recorded.stderr
    assert "cassette changed" in recorded.stdout
    assert (project / "goldens" / NAME / "trace.json.new").exists()
    assert (project / "cassettes" / f"{NAME}.yaml.new").exists()
    assert {
        p.name: p.read_bytes()
        for p in (project / "goldens" / NAME).iterdir()
        if p.suffix != ".new" and p.name != "scenario.yaml"
    } == golden
    reviewed = run(project, "review", stdin="a\nrecorded politely\n")
    assert reviewed.returncode == 0, reviewed.stdout + reviewed.stderr
    assert "1 accepted" in reviewed.stdout
    assert run(project, "check", NAME).returncode == 0
    assert run(project, "verify").returncode == 0


def _interactions(path: Path) -> list[object]:
    import yaml

    return yaml.safe_load(path.read_text())["interactions"]  # type: ignore[no-any-return]


def test_record_modes(project: Path) -> None:
    cassette = project / "cassettes" / f"{NAME}.yaml"
    before = _interactions(cassette)
    once = run(project, "record", NAME, "--mode", "once")
    assert once.returncode == 0, once.stderr
    assert f"{NAME}: unchanged" in once.stdout
    change_prompt(project)
    refused = run(project, "record", NAME, "--mode", "once")
    assert refused.returncode == 2
    assert "--mode once keeps an existing cassette" in refused.stderr
    grown = run(project, "record", NAME, "--mode", "new_episodes")
    assert grown.returncode == 0, grown.stderr
    after = _interactions(project / "cassettes" / f"{NAME}.yaml.new")
    assert after[: len(before)] == before  # the recorded answers are kept ...
    assert len(after) > len(before)  # ... and the new requests were added
    assert run(project, "record", NAME, "--mode", "sometimes").returncode == 2


def test_interactive_review_asks_again_about_a_rerecorded_update(project: Path) -> None:
    change_prompt(project)
    assert run(project, "check", NAME).returncode == 1
    reviewed = run(project, "review", stdin="a\npoliter task\na\n")
    assert reviewed.returncode == 0, reviewed.stdout + reviewed.stderr
    assert "does not match its cassette" in reviewed.stdout
    assert f"accepting the re-recorded update of {NAME}" in reviewed.stdout
    assert "1 accepted, 0 rejected, 0 skipped" in reviewed.stdout
    assert run(project, "check", NAME).returncode == 0
    assert run(project, "verify").returncode == 0
