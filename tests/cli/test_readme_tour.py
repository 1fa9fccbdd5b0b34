"""The README's tour, run as written: its shell block against free ports and a temporary data folder."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support import procs

pytestmark = [pytest.mark.tier1, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
TOUR_TIMEOUT_SECONDS = 240


def tour_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A tour of the service, as a user", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the README tour has no ```sh block"
    return match.group(1)


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "OPENAI_", "VIRTUAL_ENV"))}
    env.update(HARNESS_DATA_DIR=str(data), PORT=str(procs.free_port()), SIM_PORT=str(procs.free_port()))
    proc = subprocess.Popen(
        ["bash", "-e", "-c", tour_block()],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a failed tour leaves nothing running
    )
    try:
        out, err = proc.communicate(timeout=TOUR_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        logs = {p.name: p.read_text()[-1500:] for p in data.glob("*.log")}
        pytest.fail(f"timed out after {TOUR_TIMEOUT_SECONDS} s waiting for the tour; {out=} {err=} {logs=}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    assert proc.returncode == 0, f"{out}\n{err}"
    assert "Traceback" not in out + err
    lines = out.splitlines()
    assert lines[0] == "database at revision " + lines[0].split()[-1]
    assert any('"AWAITING_APPROVAL"' in line for line in lines), out
    assert any('"SUCCEEDED"' in line for line in lines), out
    assert any(line.startswith("ok: ") for line in lines), out  # harness audit verify
    assert "North" in out  # the report artifact, built from the tenant's sales.csv
    assert "sk-" not in out and "export " not in out  # the tokens went into variables, not the screen
    # Every curl answer ends with a newline, so each JSON body is a line of its own.
    assert all(line.startswith("{") or not line.lstrip().startswith('"') for line in lines)
    assert (data / "serve.log").exists() and (data / "worker.log").exists()
