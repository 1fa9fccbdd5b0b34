"""A plain (non-dev) install in a fresh venv imports only what it declares; the plugin still loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.tier2]

ROOT = Path(__file__).resolve().parents[2]


def sh(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=900, check=False, cwd=cwd
    )


def test_plain_install_imports_what_it_declares(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert sh(sys.executable, "-m", "venv", venv).returncode == 0
    py = venv / "bin" / "python"
    # The project without extras, plus bare pytest (what a user of the plugin already has).
    installed = sh(py, "-m", "pip", "install", "--quiet", ROOT, "pytest>=8.2,<10")
    assert installed.returncode == 0, installed.stderr[-3000:]

    imports = sh(py, "-c", "import harness.app, harness.cli, replay.cli, replay.gate, replay.pytest_plugin")
    assert imports.returncode == 0, imports.stderr
    assert sh(py, "-c", "import syrupy").returncode != 0  # really a plain install
    for tool in ("harness", "harness-replay"):
        version = sh(venv / "bin" / tool, "--version")
        assert version.returncode == 0 and "version" in version.stdout, version.stderr

    # The plugin loads under pytest; the snapshot fixture names the extra instead of a bare import error.
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "test_snap.py").write_text("def test_it(golden_snapshot):\n    pass\n")
    run = sh(venv / "bin" / "pytest", "-q", "-p", "no:cacheprovider", tmp_path / "t", cwd=tmp_path)
    assert "harness-replay[pytest]" in run.stdout + run.stderr, run.stdout[-3000:]
