"""`harness-replay` run from a developer's shell: hermetic, explicit about endpoints, forgiving to read.

Each test drives the real CLI in a subprocess on a scratch copy of the goldens (with the trust
policy, goldens/TRUST.yaml + TRUST.dsse.json, that comes with them). Those goldens are signed by the
demo key, which `check` refuses without `--allow-demo-key`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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


def run(project: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "OPENAI_", "CI"))}
    return subprocess.run(
        [str(CLI), *args, "--root", str(project)],
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=240,
        check=False,
    )


def test_harness_variables_in_the_shell_do_not_change_a_replay(project: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    result = run(
        project,
        "check",
        "rejection",
        "--allow-demo-key",
        TMPDIR=str(scratch),
        HARNESS_MAX_STEPS="1",
        HARNESS_REQUIRE_SIGNED_REQUESTS="true",  # without a secret: invalid for the service itself
        HARNESS_RATE_LIMIT_PER_KEY="1/hour",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert (
        result.stdout.rstrip("\n").splitlines()[-1]
        == "signatures: 1 of 1 goldens verified against goldens/keys/"
    )
    assert "\r" not in result.stderr  # no progress display when stderr is not a terminal
    assert list(scratch.iterdir()) == []  # the migrated template DB folder is removed on exit


def test_record_never_follows_openai_variables_and_keeps_unchanged_goldens(project: Path) -> None:
    approvals = project / "goldens" / "rejection" / "approvals.jsonl"
    before = approvals.read_bytes()
    result = run(
        project,
        "record",
        "rejection",
        "--accept",  # sign whatever changed right away: an unchanged golden must still not be re-signed
        HARNESS_SIGNING_KEY=str(DEMO_KEY),
        OPENAI_BASE_URL="http://127.0.0.1:1/v1",  # a dead port: following it would fail the recording
        OPENAI_API_KEY="sk-not-used",
    )
    assert result.returncode == 0, result.stderr
    assert "recording against the provider simulator" in result.stdout
    assert "  rejection: unchanged" in result.stdout
    assert "record: 0 re-recorded and signed, 1 unchanged" in result.stdout
    assert approvals.read_bytes() == before  # nothing re-signed or re-approved
    assert not list(project.rglob("*.new"))  # and nothing left pending for review


def test_record_summary_is_readable_and_signed_by_the_keys_name(project: Path) -> None:
    scenario = project / "goldens" / "rejection" / "scenario.yaml"
    scenario.write_text(scenario.read_text().replace('reason: "not appropriate"', 'reason: "off-brand tone"'))
    result = run(project, "record", "rejection", "--accept", HARNESS_SIGNING_KEY=str(DEMO_KEY))
    assert result.returncode == 0, result.stderr
    assert "{" not in result.stdout  # no Python dict
    assert "final run_" in result.stdout
    assert ": REJECTED; signed by demo key" in result.stdout
    assert "1 re-recorded and signed, 0 unchanged" in result.stdout


def test_corrupt_cassette_and_trace_are_per_scenario_errors(project: Path) -> None:
    (project / "cassettes" / "bad_requests.yaml").write_text(
        "harness_cassette_format: 1\n<<<<<<< HEAD\ninteractions: []\n"
    )
    (project / "cassettes" / "wrong_role_approval.yaml").write_text("- just\n- a list\n")
    (project / "goldens" / "rejection" / "trace.json").write_text('{"format_version": 1,')
    traversal = project / "goldens" / "traversal_refused" / "scenario.yaml"
    traversal.write_text(traversal.read_text() + 'settings: {max_steps: "abc"}\n')
    names = ("bad_requests", "wrong_role_approval", "rejection", "traversal_refused", "self_approval_refused")
    result = run(project, "check", *names, "--allow-demo-key")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "cassettes/bad_requests.yaml: cassette is not valid YAML at line 3, column 1" in result.stdout
    assert "cassettes/wrong_role_approval.yaml: not a cassette" in result.stdout
    assert "goldens/rejection/trace.json is not valid JSON" in result.stdout
    assert (
        "goldens/traversal_refused/scenario.yaml: settings: max_steps: Input should be a valid integer"
        in (result.stdout)
    )
    assert "1 passed, 4 error" in result.stdout  # the healthy scenario still ran


@pytest.mark.timeout(400)  # three CLI runs, one a full replay: slow on a loaded 2-core machine
def test_review_shows_and_rejects_without_a_signing_key(project: Path) -> None:
    scenario = project / "goldens" / "rejection" / "scenario.yaml"
    scenario.write_text(scenario.read_text().replace('reason: "not appropriate"', 'reason: "off-brand tone"'))
    assert run(project, "check", "rejection", "--allow-demo-key").returncode == 1  # proposes trace.json.new
    shown = run(project, "review", stdin="s\n")
    assert shown.returncode == 0, shown.stderr
    assert "off-brand tone" in shown.stdout and "skipped rejection" in shown.stdout
    # On a terminal one key decides, without Enter: "r" rejects (and still no key is needed).
    transcript = run_on_a_terminal(project, "review", keys=b"r")
    assert "rejected rejection" in transcript, transcript
    assert not (project / "goldens" / "rejection" / "trace.json.new").exists()


def run_on_a_terminal(project: Path, *args: str, keys: bytes) -> str:
    """Run the CLI with a pseudo-terminal as stdin/stdout, type ``keys`` at the first prompt."""
    import pty
    import select
    import time

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "OPENAI_", "CI"))}
    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen(
        [str(CLI), *args, "--root", str(project)], stdin=child_fd, stdout=child_fd, stderr=child_fd, env=clean
    )
    os.close(child_fd)
    output, deadline = b"", time.monotonic() + 120
    typed_at: float | None = None  # a key typed before the CLI switches the terminal to raw mode
    # is flushed by that switch (as it would be for a person typing that fast): type it again
    try:
        while proc.poll() is None or select.select([main_fd], [], [], 0)[0]:
            assert time.monotonic() < deadline, f"timed out after 120 s waiting for review; got {output!r}"
            if select.select([main_fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(main_fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            # The prompt is the last thing on the screen (maybe followed by the terminal's own
            # echo of a key that the switch to raw mode then discarded).
            waiting = output.endswith((b"? ", b"? " + keys))
            if waiting and (typed_at is None or time.monotonic() - typed_at > 2):
                os.write(main_fd, keys)
                typed_at = time.monotonic()
    finally:
        os.close(main_fd)
        proc.wait(timeout=30)
    assert proc.returncode == 0, output
    return output.decode(errors="replace")
