"""`harness-replay coverage` and `mutate` end to end, as a developer runs them (slow: tier2)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.tier2]

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from replay.cli import main; main()"]


@pytest.mark.timeout(900)
def test_coverage_reports_guardrail_figures_and_html(tmp_path: Path) -> None:
    html = tmp_path / "html"
    done = subprocess.run(
        [*CLI, "coverage", "--root", str(ROOT), "--html", str(html), "token_budget_one_over"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "guardrail modules (*):" in done.stdout
    assert "*harness/orchestrator/loop.py" in done.stdout
    assert (html / "index.html").is_file()


@pytest.mark.timeout(1200)
def test_mutate_catches_a_flipped_state_machine_and_reports_uncovered(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "mutate", "--root", str(ROOT), "harness/runs/state.py", "-j", "1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    assert "harness/runs/state.py" in done.stdout
    assert "golden mutation score:" in done.stdout
    line = next(x for x in done.stdout.splitlines() if x.startswith("harness/runs/state.py"))
    killed, _survived, uncovered = (int(v) for v in line.split()[1:4])
    assert killed > 0 and uncovered > 0


@pytest.mark.timeout(300)
def test_coverage_diff_needs_a_known_ref(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "goldens", tmp_path / "goldens")
    done = subprocess.run(
        [*CLI, "coverage", "--root", str(ROOT), "--diff", "no-such-ref-xyz"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2
    assert "no merge base" in done.stderr
