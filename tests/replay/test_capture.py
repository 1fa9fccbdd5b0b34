"""From a real run to a golden: capture, review, replay green, and a template edit fails it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from harness.database.models import Run
from harness.orchestrator import prompts
from harness.settings import Settings
from replay.engine import run_scenario
from replay.gate import check
from replay.results import ScenarioStatus
from replay.scenario import load_scenario
from replay.store import GoldenStore
from tests.support.goldens import scratch_project

pytestmark = [pytest.mark.tier1, pytest.mark.timeout(300)]  # a recorded run, then capture + review

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "harness-replay"
DEMO_KEY = ROOT / "goldens" / "keys" / "DEMO-ONLY-signing-key.pem"
NAME = "captured_journey"


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "OPENAI_BASE_URL", "OPENAI_API_KEY"}}
    env.update({"HARNESS_SIGNING_KEY": str(DEMO_KEY), "HARNESS_APPROVER": "Capturer"})
    return subprocess.run(
        [str(CLI), *args, "--root", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture
def journey_db(tmp_path: Path) -> tuple[str, Path, str]:
    """The e2e journey (submit, approve, artifact) run through the real harness against the simulator;
    its SQLite database and tenant files stay behind, as after a real run."""
    source = ROOT / "goldens" / "happy_path_with_approval" / "scenario.yaml"
    workdir = tmp_path / "service"
    run_scenario(
        load_scenario(source),
        name="journey",
        source=str(source),
        cassette=tmp_path / "journey-cassette.yaml",
        record=True,
        workdir=workdir,
    )
    url = f"sqlite:///{workdir / '.harness' / 'harness.db'}"
    engine = create_engine(url)
    with Session(engine) as session:
        [run] = session.execute(select(Run)).scalars().all()
        run_id, status = run.id, run.status
    engine.dispose()
    assert status == "SUCCEEDED"
    return url, Settings(data_dir=workdir / ".harness").tenant_files_dir, run_id


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return scratch_project(tmp_path / "project")


def test_capture_round_trip(
    journey_db: tuple[str, Path, str], project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, files, run_id = journey_db
    captured = cli(
        project, "capture", run_id, "--name", NAME, "--database-url", url, "--files-dir", str(files)
    )
    assert captured.returncode == 0, captured.stdout + captured.stderr
    assert f"captured run {run_id} as goldens/{NAME}/scenario.yaml" in captured.stdout
    assert "new golden" in captured.stdout
    scenario = yaml.safe_load((project / "goldens" / NAME / "scenario.yaml").read_text())
    [tenant] = scenario["tenants"]
    assert tenant["files"] == {"sales.csv": "region,amount\nNorth,120\nSouth,80\n"}
    assert sorted(tenant["keys"]) == ["alice", "bob"]
    turns = scenario["model_script"]["conversations"][0]["turns"]
    assert [t.get("tool_calls", [{}])[0].get("name") for t in turns[:3]] == [
        "list_files",
        "read_file",
        "write_artifact",
    ]
    # The decision is preceded by the status that shows the approver the pending action it names.
    assert [s["op"] for s in scenario["steps"]] == ["run", "status", "approve", "status", "artifact"]
    assert scenario["steps"][1]["as"] == scenario["steps"][2]["as"] == "bob"
    # Proposed, not promoted: nothing is a golden before review.
    assert not (project / "goldens" / NAME / "trace.json").exists()
    assert (project / "goldens" / NAME / "trace.json.new").exists()
    accepted = cli(project, "accept", NAME, "--reason", "captured from production run")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    checked = cli(project, "check", NAME, "--allow-demo-key")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert cli(project, "verify", "--allow-demo-key").returncode == 0

    # Editing the system template makes the captured golden fail.
    from jinja2 import FileSystemLoader

    templates = tmp_path / "templates"
    shutil.copytree(prompts.TEMPLATES_DIR, templates)
    system = templates / "system.v1.j2"
    system.write_text(system.read_text().replace("only the tools", "only the approved tools", 1))
    monkeypatch.setattr(prompts._env, "loader", FileSystemLoader(templates))
    prompts._env.cache.clear() if prompts._env.cache else None
    result = check(GoldenStore(project), [NAME], ci=True).results[0]
    assert result.status is ScenarioStatus.REGRESSED
    assert "prompts" in (result.diff.sections if result.diff else ())


def test_capture_refuses_an_unfinished_or_unknown_run(
    journey_db: tuple[str, Path, str], project: Path
) -> None:
    url, files, _ = journey_db
    missing = cli(
        project, "capture", "run_nope", "--name", "x", "--database-url", url, "--files-dir", str(files)
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: no run 'run_nope'")
    assert not (project / "goldens" / "x").exists()
