"""One step fails after earlier steps wrote state: what was committed stays consistent.

Test plan scenario "one step fails after prior steps wrote state". In-process: the driver
fails the INSERT of one chosen step (the controlled failure point), once or for good. After
every stage the whole run is checked for contradictions: steps gapless and each tool step
answering an earlier call, transitions chained and ending in the run's status, no
SUCCEEDED run with a pending approval, no artifact without an approved approval and its
tool step.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import select

from harness.database.connect import unit_of_work
from harness.database.models import Approval, Artifact, Job, Run, RunTransition, Step
from harness.runs.state import TERMINAL, RunStatus
from tests.support.api import World, world
from tests.support.faults import fail_statements, frozen_clock, param_is

pytestmark = [pytest.mark.tier1]

TASK = {"task": "Write the quarterly report from sales.csv"}
INTERNALS = ("[SQL:", "INSERT INTO", "parameters", "injected fault", "sales.csv")


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url) as it:
        yield it


def _step_named(name: str) -> Any:
    return param_is("name", 3, name)


def assert_consistent(w: World, run_id: str) -> dict[str, Any]:
    """Every cross-table invariant of one run; returns a summary for further checks."""
    with unit_of_work(w.rt.sessions) as s:
        run = s.get_one(Run, run_id)
        steps = list(s.execute(select(Step).where(Step.run_id == run_id).order_by(Step.seq)).scalars())
        transitions = list(
            s.execute(
                select(RunTransition).where(RunTransition.run_id == run_id).order_by(RunTransition.seq)
            ).scalars()
        )
        approvals = list(s.execute(select(Approval).where(Approval.run_id == run_id)).scalars())
        artifacts = list(s.execute(select(Artifact).where(Artifact.run_id == run_id)).scalars())
    assert [st.seq for st in steps] == list(range(len(steps))), "gap or duplicate in step seq"
    called: set[str] = set()
    for st in steps:
        if st.kind == "model_call":
            called |= {c["id"] for c in st.output.get("tool_calls") or []}
        else:
            assert st.input["tool_call_id"] in called, f"tool step {st.seq} answers no earlier call"
    answered = [st.input["tool_call_id"] for st in steps if st.kind == "tool_call"]
    assert len(answered) == len(set(answered)), "a tool call was answered twice"
    chain = [(t.from_status, t.to_status) for t in transitions]
    assert [t.seq for t in transitions] == list(range(len(transitions)))
    assert all(a[1] == b[0] for a, b in pairwise(chain)), f"broken chain {chain}"
    assert (chain[-1][1] if chain else "PENDING") == run.status
    assert sum(to in TERMINAL for _, to in chain) <= 1 and all(to not in TERMINAL for _, to in chain[:-1])
    pending = [a for a in approvals if a.status == "pending"]
    if run.status == RunStatus.SUCCEEDED:
        assert pending == [], "SUCCEEDED with a pending approval"
    if pending:
        assert run.status in {RunStatus.AWAITING_APPROVAL, *TERMINAL}
    written = {
        st.input["args"].get("path") for st in steps if st.name == "write_artifact" and st.outcome == "ok"
    }
    for art in artifacts:
        assert any(a.status == "approved" and a.args.get("path") == art.path for a in approvals), (
            f"artifact {art.path} without an approved approval"
        )
        assert art.path in written, f"artifact {art.path} without its tool step"
    return {"status": run.status, "error": run.error, "steps": [(st.kind, st.name) for st in steps]}


def _requests_per_turn(w: World) -> list[int]:
    return [sum(m["role"] == "assistant" for m in r.body["messages"]) for r in w.sim.requests]


def test_step_write_failing_once_keeps_committed_steps_and_resumes_without_repeats(w: World) -> None:
    with frozen_clock() as clock:
        run_id = w.post("run", "alice", TASK).json()["run_id"]
        with fail_statements(w.rt.engine, "INSERT INTO steps", when=_step_named("read_file"), times=1) as f:
            w.drain()
        assert len(f.failed) == 1

        mid = assert_consistent(w, run_id)
        # The model call that asked for read_file is committed; the failed tool step left no trace.
        assert mid["steps"] == [
            ("model_call", "sim-small"),
            ("tool_call", "list_files"),
            ("model_call", "sim-small"),
        ]
        assert mid["status"] == "RUNNING"  # resumable, not terminal, nothing pretending success

        clock.tick(timedelta(minutes=5))
        w.drain()

    final = assert_consistent(w, run_id)
    assert final["status"] == "AWAITING_APPROVAL", final["error"]
    assert [name for kind, name in final["steps"] if kind == "tool_call"] == ["list_files", "read_file"]
    # Resuming rebuilt the conversation from the DB: no turn was asked of the model twice.
    assert _requests_per_turn(w) == [0, 1, 2]


def test_step_write_failing_for_good_ends_failed_with_history_intact(w: World) -> None:
    with frozen_clock() as clock:
        run_id = w.post("run", "alice", TASK).json()["run_id"]
        with fail_statements(w.rt.engine, "INSERT INTO steps", when=_step_named("read_file")):
            for _ in range(w.rt.settings.job_max_attempts + 1):
                w.drain()
                assert_consistent(w, run_id)
                clock.tick(timedelta(minutes=5))

    final = assert_consistent(w, run_id)
    assert final["status"] == "FAILED"
    assert final["steps"] == [
        ("model_call", "sim-small"),
        ("tool_call", "list_files"),
        ("model_call", "sim-small"),
    ]
    with unit_of_work(w.rt.sessions) as s:
        assert s.execute(select(Job.status).where(Job.run_id == run_id)).scalar_one() == "dead"
    view = w.get(f"runs/{run_id}", "alice").json()
    assert view["pending_approval"] is None and view["artifacts"] == []
    assert view["error"].startswith(f"dead-lettered after {w.rt.settings.job_max_attempts} attempts")
    leaked = [word for word in INTERNALS if word in view["error"]]
    assert leaked == [], f"the run's public error leaks database internals: {view['error']!r}"


def test_failure_after_the_approved_write_never_reports_success_without_its_artifact(w: World) -> None:
    with frozen_clock() as clock:
        run_id = w.post("run", "alice", TASK).json()["run_id"]
        w.drain()
        assert assert_consistent(w, run_id)["status"] == "AWAITING_APPROVAL"
        w.post("approve", "bob", w.decision(run_id, "approve", "ok"))
        # The closing model-call step (after the artifact step committed) cannot be written.
        closing = param_is("kind", 2, "model_call")
        with fail_statements(w.rt.engine, "INSERT INTO steps", when=closing):
            for _ in range(w.rt.settings.job_max_attempts + 1):
                w.drain()
                assert_consistent(w, run_id)
                clock.tick(timedelta(minutes=5))

    final = assert_consistent(w, run_id)
    assert final["status"] == "FAILED"
    view = w.get(f"runs/{run_id}", "alice").json()
    # The approved write happened exactly once and stays visible with its approval.
    assert [a["path"] for a in view["artifacts"]] == ["report.md"]
    assert [a["status"] for a in view["approvals"]] == ["approved"]
    assert [s["name"] for s in view["steps"]].count("write_artifact") == 1
