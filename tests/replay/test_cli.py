"""`harness-replay` as a developer uses it: one real subprocess per command, on a scratch copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

pytestmark = [pytest.mark.tier1]

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "harness-replay"
DEMO_KEY = ROOT / "goldens" / "keys" / "DEMO-ONLY-signing-key.pem"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for folder in ("goldens", "cassettes"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def run(
    project: Path, *args: str, stdin: str | None = None, ci: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "HARNESS_SIGNING_KEY"}}
    env.update({"HARNESS_SIGNING_KEY": str(DEMO_KEY), "HARNESS_APPROVER": "Test Reviewer"})
    if ci:
        env["CI"] = "true"
    if args[0] in {"check", "verify"}:
        args = (*args, "--allow-demo-key")  # these goldens are signed with the committed demo key
    return subprocess.run(
        [str(CLI), *args, "--root", str(project)] if args[0] != "keygen" else [str(CLI), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def change_rejection_reason(project: Path) -> None:
    scenario = project / "goldens" / "rejection" / "scenario.yaml"
    scenario.write_text(scenario.read_text().replace('reason: "not appropriate"', 'reason: "off-brand tone"'))


def test_regression_pending_reject_accept_verify(project: Path) -> None:
    change_rejection_reason(project)
    regressed = run(project, "check", "rejection")
    assert regressed.returncode == 1
    assert "rejection  REGRESSED" in regressed.stdout and "off-brand tone" in regressed.stdout
    new = project / "goldens" / "rejection" / "trace.json.new"
    assert new.exists()

    pending = json.loads(run(project, "pending", "--json").stdout)
    assert [p["name"] for p in pending] == ["rejection"]
    assert "transitions" in pending[0]["sections"] and pending[0]["structural"] >= 1

    assert run(project, "reject", "rejection").returncode == 0
    assert not new.exists()
    assert run(project, "check", "rejection").returncode == 1  # still a regression: nothing accepted

    approvals = project / "goldens" / "rejection" / "approvals.jsonl"
    before = approvals.read_text().count("\n")
    accepted = run(project, "accept", "rejection", "--reason", "new wording agreed")
    assert accepted.returncode == 0, accepted.stderr
    assert "accepted rejection" in accepted.stdout
    lines = approvals.read_text().splitlines()
    assert len(lines) == before + 1
    last = json.loads(lines[-1])
    assert (last["approver"], last["reason"]) == ("Test Reviewer", "new wording agreed")
    assert run(project, "check", "rejection").returncode == 0
    verified = run(project, "verify", "--json")
    assert verified.returncode == 0, verified.stdout
    assert all(row["ok"] for row in json.loads(verified.stdout)["goldens"])


def test_interactive_review_from_a_pipe(project: Path) -> None:
    change_rejection_reason(project)
    run(project, "check", "rejection")
    reviewed = run(project, "review", stdin="a\npiped reason\n")
    assert reviewed.returncode == 0, reviewed.stderr
    assert "1 accepted, 0 rejected, 0 skipped" in reviewed.stdout
    last = json.loads((project / "goldens" / "rejection" / "approvals.jsonl").read_text().splitlines()[-1])
    assert last["reason"] == "piped reason"


def test_ci_never_writes(project: Path) -> None:
    change_rejection_reason(project)
    checked = run(project, "check", "rejection", ci=True)
    assert checked.returncode == 1
    assert not (project / "goldens" / "rejection" / "trace.json.new").exists()
    recorded = run(project, "record", "rejection", ci=True)
    assert recorded.returncode == 2
    assert recorded.stderr.strip().count("\n") == 0
    assert recorded.stderr.startswith("error: CI=true")


def test_reports_for_tools(project: Path, tmp_path: Path) -> None:
    change_rejection_reason(project)
    junit, markdown = tmp_path / "junit.xml", tmp_path / "comment.md"
    result = run(
        project,
        "check",
        "--json",
        "--junit-xml",
        str(junit),
        "--markdown",
        str(markdown),
        "--unreferenced",
        "warn",
    )
    assert result.returncode == 1
    statuses = {r["name"]: r["status"] for r in json.loads(result.stdout)["scenarios"]}
    assert statuses["rejection"] == "regressed"
    assert sum(s == "passed" for s in statuses.values()) == len(statuses) - 1
    suite = ElementTree.parse(junit).getroot()
    assert len(suite.iter("failure").__next__().text or "") > 0
    assert "rejection" in markdown.read_text()


def test_a_broken_scenario_file_is_named(project: Path) -> None:
    scenario = project / "goldens" / "multi_tool_run" / "scenario.yaml"
    scenario.write_text(scenario.read_text().replace("seed: 13", "seed: 13\ncolour: blue"))
    checked = run(project, "check", "multi_tool_run")
    assert checked.returncode == 1
    assert "goldens/multi_tool_run/scenario.yaml" in checked.stdout and "colour" in checked.stdout
    recorded = run(project, "record", "multi_tool_run")
    assert recorded.returncode == 2
    assert recorded.stderr.startswith("error:") and "colour" in recorded.stderr


def test_keygen_makes_a_usable_key(tmp_path: Path, project: Path) -> None:
    made = run(project, "keygen", str(tmp_path / "me.pem"), "--name", "Me")
    assert made.returncode == 0, made.stderr
    assert oct((tmp_path / "me.pem").stat().st_mode & 0o777) == "0o600"
    record = json.loads((tmp_path / "me.pub.json").read_text())
    assert record["name"] == "Me" and record["keyid"].startswith("ed25519:")
