"""The fixture factories build valid rows the service reads back, and adversarial rows it refuses.

Each adversarial variant pins one invariant of a reader: the artifact verifier, the artifact
endpoint, the human gate, the run-creation validators and the status view.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from harness.artifacts import commit_artifact, verify_artifact
from harness.database.connect import unit_of_work
from harness.database.models import Approval, Artifact, AuditEntry, Run
from harness.errors import ForbiddenModel, IllegalTransition, InvalidRequest, SandboxViolation
from harness.runs.service import RunSpec, create_run, decide
from harness.runs.state import TERMINAL, RunStatus
from tests.support.api import World, world
from tests.support.factories import (
    CONFUSABLE_MODELS,
    SECRET_OUTPUT,
    TRAVERSAL_PATHS,
    Factories,
    oversized_task,
)

pytestmark = [pytest.mark.tier1, pytest.mark.security]


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url) as it:
        yield it


@pytest.fixture
def f(w: World) -> Factories:
    return Factories(w.rt)


def _count(w: World, model: type[Any]) -> int:
    with unit_of_work(w.rt.sessions) as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["type"].endswith("/" + code), body
    return body


def test_valid_rows_read_back_through_the_api(w: World, f: Factories) -> None:
    alice = f.principal("acme")
    run = f.run(alice, status=RunStatus.SUCCEEDED)
    f.step(run)
    f.step(run, kind="tool_call", name="write_artifact")
    f.approval(run, status="approved", decided_by="key_bob")
    art = f.artifact(run)

    view = w.get(f"runs/{run.id}", "alice")
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["status"] == "SUCCEEDED"
    assert [(s["seq"], s["kind"]) for s in body["steps"]] == [(0, "model_call"), (1, "tool_call")]
    assert body["pending_approval"] is None and body["approvals"][0]["status"] == "approved"
    assert body["artifacts"] == [
        {"path": "report.md", "size": art.size, "sha256": art.sha256, "created_at": art.created_at}
    ]
    assert verify_artifact(art)
    content = w.get(f"runs/{run.id}/artifacts/report.md", "alice")
    assert content.status_code == 200 and content.text == "# Report\n\nTotal: 200\n"


def test_runs_persist_in_every_state(f: Factories, w: World) -> None:
    alice = f.principal("acme")
    built = {status: f.run(alice, status=status).id for status in RunStatus}
    with unit_of_work(w.rt.sessions) as s:
        assert {status: s.get_one(Run, run_id).status for status, run_id in built.items()} == {
            status: str(status) for status in RunStatus
        }


def test_a_tampered_artifact_is_refused(w: World, f: Factories) -> None:
    run = f.run(f.principal("acme"), status=RunStatus.SUCCEEDED)
    tampered = f.tampered_artifact(run)
    missing = f.missing_file_artifact(run)

    assert not verify_artifact(tampered)
    assert not verify_artifact(missing)
    for row in (tampered, missing):
        resp = w.get(f"runs/{run.id}/artifacts/{row.path}", "alice")
        body = _problem(resp, 409, "artifact-tampered")
        assert "does not match its recorded digest" in body["detail"]
        assert "999" not in resp.text  # the tampered bytes are never served


def test_traversal_paths_cannot_be_committed(w: World, f: Factories) -> None:
    run = f.run(f.principal("acme"), status=RunStatus.RUNNING)
    before = sorted(p for p in w.rt.settings.data_dir.rglob("*") if p.is_file())
    for path in TRAVERSAL_PATHS:
        with pytest.raises(SandboxViolation), unit_of_work(w.rt.sessions) as s:
            commit_artifact(s, w.rt, tenant_id=run.tenant_id, run_id=run.id, path=path, content="x")
    assert _count(w, Artifact) == 0
    assert sorted(p for p in w.rt.settings.data_dir.rglob("*") if p.is_file()) == before


def test_an_artifact_row_pointing_outside_its_root_is_not_served(
    w: World, f: Factories, tmp_path: Path
) -> None:
    run = f.run(f.principal("acme"), status=RunStatus.SUCCEEDED)
    row = f.escaped_artifact(run, outside=tmp_path / "elsewhere" / "escape.md")
    assert verify_artifact(row)  # the digest matches: only containment can catch it
    resp = w.get(f"runs/{run.id}/artifacts/{quote(row.path, safe='')}", "alice")
    _problem(resp, 409, "artifact-tampered")


def test_an_oversized_task_is_refused(w: World, f: Factories) -> None:
    alice = f.principal("acme")
    with pytest.raises(InvalidRequest) as raised, unit_of_work(w.rt.sessions) as s:
        create_run(s, w.rt, alice, RunSpec(task=oversized_task(w.rt), model=None, tools=None))
    assert raised.value.details["field"] == "task"
    resp = w.post("run", "alice", {"task": oversized_task(w.rt)})
    _problem(resp, 422, "invalid-request")
    assert _count(w, Run) == 0


def test_confusable_model_names_are_refused(w: World, f: Factories) -> None:
    alice = f.principal("acme")
    for model in CONFUSABLE_MODELS:
        with pytest.raises(ForbiddenModel), unit_of_work(w.rt.sessions) as s:
            create_run(s, w.rt, alice, RunSpec(task="summarise the workspace", model=model, tools=None))
        resp = w.post("run", "alice", {"task": "summarise the workspace", "model": model})
        _problem(resp, 403, "forbidden-model")
    assert _count(w, Run) == 0


def test_the_gate_refuses_a_decision_on_a_terminal_run(w: World, f: Factories) -> None:
    alice, bob = f.principal("acme"), f.principal("acme", roles=("approver",))
    for status in sorted(TERMINAL):
        run, approval = f.terminal_run_with_pending_approval(alice, status=status)
        audited = _count(w, AuditEntry)
        for decision in ("approve", "reject"):
            with pytest.raises(IllegalTransition):
                decide(
                    w.rt,
                    bob,
                    run_id=run.id,
                    decision=decision,
                    reason="too late",
                    approval_id=approval.id,
                    args_sha256=approval.args_sha256,
                )
        with unit_of_work(w.rt.sessions) as s:
            assert s.get_one(Run, run.id).status == status
            assert s.get_one(Approval, approval.id).status == "pending"
        assert _count(w, AuditEntry) == audited, f"a refused decision on a {status} run was audited"


def test_a_secret_in_step_output_never_reaches_the_status_view(w: World, f: Factories) -> None:
    run = f.run(f.principal("acme"), status=RunStatus.SUCCEEDED)
    f.secret_step(run)

    resp = w.get(f"runs/{run.id}", "alice")
    assert resp.status_code == 200
    assert resp.json()["steps"][0]["name"] == "read_file"
    for secret in ("sk-proj-Zq3xT9vLm2Qw8Rt5Yu1Io4Pa7Sd0Fg6Hj", "hunter2-s3cr3t", "AKIAIOSFODNN7EXAMPLE"):
        assert any(secret in v for v in SECRET_OUTPUT.values())
        assert secret not in resp.text
