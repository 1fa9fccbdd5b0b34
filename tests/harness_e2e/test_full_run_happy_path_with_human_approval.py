"""Test plan: a complete run from POST /run through approval to finalised artifacts.

Three real processes on loopback (provider simulator, uvicorn, worker), driven over HTTP
exactly as the README's quick tour does, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import procs

pytestmark = [pytest.mark.tier1, pytest.mark.e2e]

DATA = Path(__file__).parent / "data"
REPORT = "# Quarterly report\n\nNorth: 120\nSouth: 80\nTotal: 200\n"


def _wait_for(client: httpx.Client, run_id: str, status: str, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        view = client.get(f"/api/harness/runs/{run_id}", headers={"Authorization": f"Bearer {token}"}).json()
        if view["status"] == status:
            return view
        assert view["status"] not in {"FAILED", "REJECTED"}, view
        assert time.monotonic() < deadline, f"run stuck in {view['status']}"
        time.sleep(0.1)


def test_journey_over_real_processes(tmp_path: Path, database_url: str) -> None:
    files = tmp_path / "acme-files"
    files.mkdir()
    (files / "sales.csv").write_text("region,amount\nNorth,120\nSouth,80\n")
    env = procs.base_env(tmp_path / ".harness", database_url)
    with procs.provider_sim(DATA / "journey_script.yaml", env, tmp_path / "sim.log") as sim_url:
        env["HARNESS_PROVIDER_BASE_URL"] = sim_url
        procs.harness(["db", "upgrade"], env)
        created = json.loads(
            procs.harness(
                [
                    "tenants",
                    "create",
                    "acme",
                    "--key",
                    "alice:submitter",
                    "--key",
                    "bob:approver",
                    "--files",
                    str(files),
                ],
                env,
            ).stdout
        )
        alice, bob = (k["token"] for k in created["keys"])
        with (
            procs.api_server(env, tmp_path / "api.log") as base,
            procs.worker(env, tmp_path / "worker.log"),
            httpx.Client(base_url=base, timeout=10) as client,
        ):
            submitted = client.post(
                "/api/harness/run",
                json={"task": "Write the quarterly report from sales.csv"},
                headers={"Authorization": f"Bearer {alice}"},
            )
            assert submitted.status_code == 202, submitted.text
            run_id = submitted.json()["run_id"]
            assert submitted.json()["status"] == "PENDING"

            waiting = _wait_for(client, run_id, "AWAITING_APPROVAL", alice)
            pending = waiting["pending_approval"]
            assert pending["action"] == "write_artifact"
            assert pending["args"]["path"] == "report.md"
            assert waiting["artifacts"] == []

            decided = client.post(
                "/api/harness/approve",
                json={
                    "run_id": run_id,
                    "decision": "approve",
                    "reason": "numbers checked",
                    "approval_id": pending["id"],
                    "args_sha256": pending["args_sha256"],
                },
                headers={"Authorization": f"Bearer {bob}"},
            )
            assert decided.status_code == 200, decided.text
            assert decided.json()["status"] == "APPROVED"

            done = _wait_for(client, run_id, "SUCCEEDED", alice)
            artifact = client.get(
                f"/api/harness/runs/{run_id}/artifacts/report.md",
                headers={"Authorization": f"Bearer {alice}"},
            )
    assert [(t["from"], t["to"]) for t in done["transitions"]] == [
        ("PENDING", "RUNNING"),
        ("RUNNING", "AWAITING_APPROVAL"),
        ("AWAITING_APPROVAL", "APPROVED"),
        ("APPROVED", "RUNNING"),
        ("RUNNING", "SUCCEEDED"),
    ]
    assert [(s["kind"], s["name"]) for s in done["steps"]] == [
        ("model_call", "sim-small"),
        ("tool_call", "list_files"),
        ("model_call", "sim-small"),
        ("tool_call", "read_file"),
        ("model_call", "sim-small"),
        ("tool_call", "write_artifact"),
        ("model_call", "sim-small"),
    ]
    assert done["artifacts"] == [
        {
            "path": "report.md",
            "size": len(REPORT.encode()),
            "sha256": hashlib.sha256(REPORT.encode()).hexdigest(),
            "created_at": done["artifacts"][0]["created_at"],
        }
    ]
    assert artifact.status_code == 200 and artifact.text == REPORT
    verified = procs.harness(["audit", "verify", "--json"], env)
    report = json.loads(verified.stdout)
    assert report["ok"] is True and report["first_bad_seq"] is None
    # tenant created, 2 keys, run created, 5 transitions, 4 model calls, 1 approval requested,
    # 1 approval decided, 1 artifact committed
    assert report["entries"] == 1 + 2 + 1 + 5 + 4 + 1 + 1 + 1
