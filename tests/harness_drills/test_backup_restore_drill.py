"""Release drill: back up a live database with runs in every state, lose it, restore it.

SQLite through the backup API (consistent while the service holds it open), PostgreSQL through
``pg_dump -Fc`` / ``pg_restore`` of the test schema after the schema is dropped. Then the restored
database must pass ``harness audit verify``, hold every run in the state it had, let a resumed
worker finish the run whose job was still queued at backup time, and serve an approval that
completes another run; the shipped golden replays clean alongside.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from harness.app import create_app
from harness.database.connect import unit_of_work
from harness.database.models import AuditEntry, Job, Run
from harness.jobs.worker import drain
from harness.providers.openai_client import OpenAIChatClient
from harness.runs.state import TERMINAL, RunStatus
from replay.gate import check
from replay.store import GoldenStore
from tests.support.api import World, decision_body, world
from tests.support.db import postgres_base_url
from tests.support.factories import Factories
from tests.support.procs import base_env, harness

pytestmark = [pytest.mark.tier3, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
TASK = {"task": "Write the quarterly report from sales.csv"}  # the journey script asks for approval


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url) as it:
        yield it


def _snapshot(rt: Any) -> dict[str, Any]:
    with unit_of_work(rt.sessions) as s:
        runs = {r.id: r.status for r in s.execute(select(Run)).scalars()}
        audit = s.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        jobs = s.execute(select(func.count()).select_from(Job)).scalar_one()
    return {"runs": runs, "audit": audit, "jobs": jobs}


def _backup_and_lose(url: str, tmp_path: Path) -> str:
    """Back the database up, destroy the original, restore; return the restored URL."""
    if url.startswith("sqlite"):
        live = Path(urlsplit(url).path)
        backup = tmp_path / "backup.db"
        with sqlite3.connect(live) as source, sqlite3.connect(backup) as target:
            source.backup(target)
        restored = tmp_path / "restored" / "harness.db"
        restored.parent.mkdir()
        shutil.copy2(backup, restored)
        for f in live.parent.glob(live.name + "*"):
            f.unlink()  # the disaster: the live file (and its WAL) is gone
        return f"sqlite:///{restored.as_posix()}"
    schema = parse_qs(urlsplit(url).query)["options"][0].split("search_path=")[1]
    base, dump = postgres_base_url(), tmp_path / "backup.dump"
    subprocess.run(["pg_dump", "-Fc", "-n", schema, "-f", str(dump), base], check=True, timeout=120)
    subprocess.run(["psql", base, "-q", "-c", f'DROP SCHEMA "{schema}" CASCADE'], check=True, timeout=60)
    subprocess.run(["pg_restore", "-d", base, str(dump)], check=True, timeout=120)
    return url


def test_backup_restore_then_verify_replay_and_resume(w: World, make_runtime: Any, tmp_path: Path) -> None:
    f = Factories(w.rt)
    alice = f.principal("acme")
    for status in RunStatus:  # a run in every state
        f.run(alice, status=status)
    waiting = w.post("run", "alice", TASK).json()["run_id"]
    w.drain()
    queued = w.post("run", "alice", TASK).json()["run_id"]
    before = _snapshot(w.rt)
    assert before["runs"][waiting] == "AWAITING_APPROVAL"
    assert before["runs"][queued] == "PENDING" and before["jobs"] >= 1
    assert set(before["runs"].values()) == {str(s) for s in RunStatus}

    restored_url = _backup_and_lose(w.rt.settings.database_url or "", tmp_path)
    w.rt.close()

    rt = make_runtime(restored_url, providers=[_fresh_client(w)])
    assert _snapshot(rt) == before  # nothing lost, nothing changed

    env = base_env(rt.settings.data_dir, restored_url)
    verified = harness(["audit", "verify", "--json"], env, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["entries"] == before["audit"]

    drain(rt)  # the resumed worker finishes the run whose job was queued at backup time
    with TestClient(create_app(runtime=rt), raise_server_exceptions=False) as client:
        auth = {"Authorization": f"Bearer {w.keys['alice'].token}"}
        resumed = client.get(f"/api/harness/runs/{queued}", headers=auth).json()
        assert resumed["status"] == "AWAITING_APPROVAL", resumed
        bob = {"Authorization": f"Bearer {w.keys['bob'].token}"}
        decided = client.post(
            "/api/harness/approve",
            json=decision_body(rt, waiting, "approve", "drill"),
            headers=bob,
        )
        assert decided.status_code == 200, decided.text
        drain(rt)
        done = client.get(f"/api/harness/runs/{waiting}", headers=auth).json()
    assert done["status"] == "SUCCEEDED", done
    after = _snapshot(rt)
    assert all(after["runs"][r] == s for r, s in before["runs"].items() if s in TERMINAL)
    verified = harness(["audit", "verify"], env, check=False)
    assert verified.returncode == 0 and verified.stdout.startswith("ok"), verified.stdout


def test_golden_replay_passes_beside_the_drill(tmp_path: Path) -> None:
    for folder in ("goldens", "cassettes"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    outcome = check(GoldenStore(tmp_path), ["happy_path_with_approval", "rejection"], ci=True)
    assert outcome.ok, [r.message for r in outcome.results]


def _fresh_client(w: World) -> OpenAIChatClient:
    """A new client on the same simulator: a runtime closes the clients it was given."""
    return OpenAIChatClient(base_url=w.sim.base_url, api_key="sk-sim-test", timeout=10)
