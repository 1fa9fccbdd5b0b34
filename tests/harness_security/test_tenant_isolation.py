"""Security regression set: tenant isolation of status, artifacts, approvals, workspace files
and retrieval, on SQLite and PostgreSQL.

globex probing acme's run must get exactly what it gets for an id that was never issued, and
globex's model, told to look for acme's sales figures, must come back empty-handed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from harness.database.connect import unit_of_work
from harness.database.models import Approval, Document, Step
from tests.support.api import World, world
from tests.support.security import (
    QUARTERLY_TASK,
    assert_problem,
    db_counts,
    finished_run,
    masked,
    missing_id_like,
    run_status,
)

pytestmark = [pytest.mark.tier1, pytest.mark.security]

SCRIPT = Path(__file__).parent / "data" / "tenant_isolation_script.yaml"
ACME_FILE_BYTES = ("region,amount", "North,120", "South,80")
ACME_DOC = "ACME-ONLY-DOC sales figures for the north region were 120"


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url, script=SCRIPT) as it:
        yield it


def _probe_pair(w: World, path_of: Any, real_id: str) -> tuple[Any, Any]:
    """globex's answer for acme's real run and for an id never issued, same shape and length."""
    fake_id = missing_id_like(real_id)
    return w.get(path_of(real_id), "gina"), w.get(path_of(fake_id), "gina")


def _assert_indistinguishable(real: Any, fake: Any, real_id: str) -> None:
    assert_problem(real, 404, "not-found")
    assert_problem(fake, 404, "not-found")
    assert real.json().keys() == fake.json().keys()
    fake_id = missing_id_like(real_id)
    assert masked(real.content, {real_id: "<id>"}) == masked(fake.content, {fake_id: "<id>"})


def test_globex_cannot_tell_acmes_run_or_artifact_from_a_missing_one(w: World) -> None:
    victim = finished_run(w, submitter="alice", approver="bob")
    before = db_counts(w)
    for path_of in (lambda i: f"runs/{i}", lambda i: f"runs/{i}/artifacts/{victim.artifact_path}"):
        real, fake = _probe_pair(w, path_of, victim.run_id)
        _assert_indistinguishable(real, fake, victim.run_id)
        for private in victim.private_strings():
            assert private not in real.text
    assert db_counts(w) == before
    # and the owner still reads both
    assert w.get(f"runs/{victim.run_id}/artifacts/report.md", "alice").text == victim.artifact_content


def test_globex_cannot_reach_acmes_artifact_through_its_own_run(w: World) -> None:
    victim = finished_run(w, submitter="alice", approver="bob")
    own = w.post("run", "gina", {"task": "Nothing in particular"}).json()["run_id"]
    w.drain()
    for path in (
        f"../../acme/{victim.run_id}/report.md",
        f"../{victim.run_id}/report.md",
        "report.md",
        f"%2e%2e/{victim.run_id}/report.md",
    ):
        resp = w.get(f"runs/{own}/artifacts/{path}", "gina")
        assert resp.status_code == 404, f"{path}: {resp.status_code} {resp.text}"
        assert victim.artifact_content not in resp.text


def test_globex_cannot_approve_or_reject_acmes_run(w: World) -> None:
    run_id = w.post("run", "alice", {"task": QUARTERLY_TASK}).json()["run_id"]
    w.drain()
    assert run_status(w, run_id) == "AWAITING_APPROVAL"
    before = db_counts(w)
    for decision in ("approve", "reject"):
        real = w.post("approve", "gina", w.decision(run_id, decision, "mine now"))
        fake_id = missing_id_like(run_id)
        fake = w.post("approve", "gina", w.decision(fake_id, decision, "mine now"))
        assert_problem(real, 404, "not-found")
        assert masked(real.content, {run_id: "<id>"}) == masked(fake.content, {fake_id: "<id>"})
    assert db_counts(w) == before
    assert run_status(w, run_id) == "AWAITING_APPROVAL"
    with unit_of_work(w.rt.sessions) as session:
        (approval,) = session.execute(select(Approval).where(Approval.run_id == run_id)).scalars()
        assert (approval.status, approval.decided_by) == ("pending", None)
    # the gate itself still works for acme's own approver
    own = w.post("approve", "bob", w.decision(run_id, "approve", "ok"))
    assert own.status_code == 200, own.text


def _tool_steps(w: World, run_id: str) -> list[Step]:
    with unit_of_work(w.rt.sessions) as session:
        return list(
            session.execute(
                select(Step).where(Step.run_id == run_id, Step.kind == "tool_call").order_by(Step.seq)
            ).scalars()
        )


def _assert_no_acme_bytes(w: World, run_id: str) -> None:
    steps = json.dumps([(s.input, s.output) for s in _tool_steps(w, run_id)])
    wire = json.dumps([r.body for r in w.sim.requests])
    view = w.get(f"runs/{run_id}", "gina").text
    for where, text in (("tool results", steps), ("provider requests", wire), ("status", view)):
        for fragment in (*ACME_FILE_BYTES, ACME_DOC):
            assert fragment not in text, f"acme's {fragment!r} reached globex's {where}"


def test_globex_model_hunting_for_acme_files_finds_nothing(w: World) -> None:
    finished_run(w, submitter="alice", approver="bob")  # acme's workspace exists on disk now
    with unit_of_work(w.rt.sessions) as session:
        session.add(Document(id="doc_acme_sales", tenant_id="acme", title="Sales figures", body=ACME_DOC))
    w.sim.reset()
    run_id = w.post("run", "gina", {"task": "Look for sales figures"}).json()["run_id"]
    w.drain()

    listing, up_one, up_two, list_parent = _tool_steps(w, run_id)
    assert "secret-plans.txt" in listing.output["content"]
    assert "sales.csv" not in listing.output["content"]
    for refused in (up_one, up_two, list_parent):
        assert refused.outcome == "refused", refused.output
        assert "traversal" in refused.output["content"]
    _assert_no_acme_bytes(w, run_id)
    assert run_status(w, run_id) == "SUCCEEDED"


def test_globex_reading_acmes_file_name_gets_a_not_found_tool_result(w: World) -> None:
    """sales.csv exists only in acme's files; for globex it is simply absent, and the run goes on."""
    run_id = w.post("run", "gina", {"task": "Open sales.csv"}).json()["run_id"]
    w.drain()

    steps = _tool_steps(w, run_id)
    assert [(s.name, s.outcome) for s in steps] == [("read_file", "error")], (
        f"run is {run_status(w, run_id)}: the missing file did not come back to the model as a "
        "tool error (a NotFound escaping the tool step fails the whole job)"
    )
    assert "no file 'sales.csv'" in steps[0].output["content"]
    _assert_no_acme_bytes(w, run_id)
    assert run_status(w, run_id) == "SUCCEEDED"
