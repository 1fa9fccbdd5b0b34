"""Tool calls the harness refuses are audited, tracked by our own ids, and never kill a run.

Issue #8 section 6: every refusal (unknown tool, ungranted tool, bad arguments, duplicate call id,
oversized write, a write path the sandbox refuses, a conflicting rewrite) is one ``tool.refused``
audit entry of one shape and a ``refused`` step; size and path are checked before a human is asked;
a repeated approved write of the same bytes is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from harness.database.connect import unit_of_work
from harness.database.models import Approval, Artifact, AuditEntry, Job, Run, Step
from tests.support.api import World, world

pytestmark = [pytest.mark.tier1, pytest.mark.security]

REFUSAL_KEYS = {"tool", "call", "args", "reason"}


def _call(name: str, arguments: Any, call_id: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "arguments": arguments}
    if call_id is not None:
        call["id"] = call_id
    return call


@pytest.fixture
def make_world(make_runtime: Any, database_url: str, tmp_path: Path) -> Iterator[Any]:
    opened: list[Any] = []

    def open_world(turns: list[list[dict[str, Any]]], **settings: Any) -> World:
        script = tmp_path / f"script-{len(opened)}.yaml"
        body = {
            "format_version": 1,
            "created": 1767225600,
            "conversations": [],
            "default": {"turns": [*({"tool_calls": t} for t in turns), {"content": "Done."}]},
        }
        script.write_text(yaml.safe_dump(body))
        ctx = world(make_runtime, database_url, script=script, **settings)
        opened.append(ctx)
        return ctx.__enter__()

    yield open_world
    for ctx in reversed(opened):
        ctx.__exit__(None, None, None)


def _submit(w: World, **body: Any) -> str:
    resp = w.post("run", "alice", {"task": "do the work", **body})
    assert resp.status_code == 202, resp.text
    run_id: str = resp.json()["run_id"]
    w.drain()
    return run_id


def _approve_all(w: World, run_id: str) -> None:
    """Approve whatever is pending until the run stops waiting (bounded)."""
    for _ in range(5):
        if w.get(f"runs/{run_id}", "bob").json()["status"] != "AWAITING_APPROVAL":
            return
        resp = w.post("approve", "bob", w.decision(run_id))
        assert resp.status_code == 200, resp.text
        w.drain()
    raise AssertionError("the run kept asking for approval")


def _refusals(w: World, run_id: str) -> list[dict[str, Any]]:
    with unit_of_work(w.rt.sessions) as s:
        entries = s.execute(
            select(AuditEntry)
            .where(AuditEntry.action == "tool.refused", AuditEntry.target == f"run/{run_id}")
            .order_by(AuditEntry.seq)
        ).scalars()
        return [dict(e.payload) for e in entries]


def _tool_steps(w: World, run_id: str) -> list[tuple[str, str, str]]:
    with unit_of_work(w.rt.sessions) as s:
        steps = s.execute(
            select(Step).where(Step.run_id == run_id, Step.kind == "tool_call").order_by(Step.seq)
        ).scalars()
        return [(st.name, st.outcome, st.output["content"]) for st in steps]


def _status(w: World, run_id: str) -> str:
    with unit_of_work(w.rt.sessions) as s:
        return s.get_one(Run, run_id).status


def _approvals(w: World, run_id: str) -> list[tuple[str, str]]:
    with unit_of_work(w.rt.sessions) as s:
        rows = s.execute(select(Approval).where(Approval.run_id == run_id)).scalars()
        return [(a.args["path"], a.status) for a in rows]


def test_unknown_ungranted_and_badly_argued_calls_are_audited_alike(make_world: Any) -> None:
    w = make_world(
        [
            [_call("delete_everything", {})],
            [_call("list_files", {})],
            [_call("read_file", {"file": "x"})],
            [_call("read_file", "not json at all")],
        ]
    )
    run_id = _submit(w, tools=["read_file", "write_artifact"])
    assert _status(w, run_id) == "SUCCEEDED"
    refusals = _refusals(w, run_id)
    assert [r["reason"] for r in refusals] == [
        "unknown-tool",
        "tool-not-granted",
        "bad-arguments",
        "bad-arguments",
    ]
    assert all(set(r) == REFUSAL_KEYS for r in refusals), refusals
    assert [r["tool"] for r in refusals] == ["delete_everything", "list_files", "read_file", "read_file"]
    assert all(r["call"].startswith("call_") for r in refusals)
    assert [(n, o) for n, o, _ in _tool_steps(w, run_id)] == [
        ("delete_everything", "refused"),
        ("list_files", "refused"),
        ("read_file", "refused"),
        ("read_file", "refused"),
    ]


def test_a_repeated_approved_write_of_the_same_bytes_is_a_no_op(make_world: Any) -> None:
    write = _call("write_artifact", {"path": "a.md", "content": "same\n"})
    w = make_world([[write], [write]])
    run_id = _submit(w)
    _approve_all(w, run_id)
    assert _status(w, run_id) == "SUCCEEDED"
    with unit_of_work(w.rt.sessions) as s:
        assert s.execute(select(Artifact.path).where(Artifact.run_id == run_id)).scalars().all() == ["a.md"]
        assert not s.execute(select(Job).where(Job.status == "dead")).scalars().all()
    steps = _tool_steps(w, run_id)
    assert [o for _, o, _ in steps] == ["ok", "ok"]
    assert "already written with exactly these bytes" in steps[1][2]
    assert _approvals(w, run_id) == [("a.md", "approved")], "a human was asked twice for the same write"
    assert _refusals(w, run_id) == []


def test_a_repeated_write_with_other_bytes_is_refused_and_audited_not_a_dead_run(make_world: Any) -> None:
    w = make_world(
        [
            [_call("write_artifact", {"path": "a.md", "content": "first\n"})],
            [_call("write_artifact", {"path": "a.md", "content": "second\n"})],
        ]
    )
    run_id = _submit(w)
    _approve_all(w, run_id)
    assert _status(w, run_id) == "SUCCEEDED"
    assert [r["reason"] for r in _refusals(w, run_id)] == ["artifact-exists"]
    assert _approvals(w, run_id) == [("a.md", "approved")], "a human was asked to approve an overwrite"
    with unit_of_work(w.rt.sessions) as s:
        (artifact,) = s.execute(select(Artifact).where(Artifact.run_id == run_id)).scalars()
        assert Path(artifact.storage_path).read_text() == "first\n"


def test_a_reused_model_call_id_is_refused_and_audited_never_silently_dropped(make_world: Any) -> None:
    w = make_world(
        [
            [_call("write_artifact", {"path": "a.md", "content": "a\n"}, call_id="call_same")],
            [_call("write_artifact", {"path": "b.md", "content": "b\n"}, call_id="call_same")],
        ]
    )
    run_id = _submit(w)
    _approve_all(w, run_id)
    assert _status(w, run_id) == "SUCCEEDED"
    refusals = _refusals(w, run_id)
    assert [(r["reason"], r["args"]["path"]) for r in refusals] == [("duplicate-call-id", "b.md")]
    assert [(n, o) for n, o, _ in _tool_steps(w, run_id)] == [
        ("write_artifact", "ok"),
        ("write_artifact", "refused"),
    ]
    with unit_of_work(w.rt.sessions) as s:
        calls = [
            c
            for out in s.execute(
                select(Step.output).where(Step.run_id == run_id, Step.kind == "model_call").order_by(Step.seq)
            ).scalars()
            for c in out.get("tool_calls") or []
        ]
    assert [c["model_id"] for c in calls] == ["call_same", "call_same"]
    assert len({c["id"] for c in calls}) == 2 and all(c["id"] != "call_same" for c in calls)
    # what the provider saw back carries our ids only, never the bookkeeping fields
    last_prompt = w.sim.requests[-1]
    sent = [c for m in last_prompt.body["messages"] for c in m.get("tool_calls") or []]
    assert [c["id"] for c in sent] == [c["id"] for c in calls]
    assert all(set(c) == {"id", "type", "function"} for c in sent)


def test_an_oversized_write_is_refused_before_a_human_is_asked(make_world: Any) -> None:
    big = "x" * 5000
    w = make_world([[_call("write_artifact", {"path": "big.md", "content": big})]], max_artifact_bytes=4096)
    run_id = _submit(w)
    assert _status(w, run_id) == "SUCCEEDED"
    assert _approvals(w, run_id) == []
    (refusal,) = _refusals(w, run_id)
    assert refusal["reason"] == "artifact-too-large"
    assert big not in refusal["args"]["content"] and "5000 chars" in refusal["args"]["content"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [("../../../cron.d/job", "traversal"), ("/tmp/owned", "absolute"), ("notes/%2e%2e/x", "encoded")],
)
def test_a_write_path_the_sandbox_refuses_never_reaches_an_approver(
    make_world: Any, path: str, reason: str
) -> None:
    w = make_world([[_call("write_artifact", {"path": path, "content": "* * * * * root sh\n"})]])
    run_id = _submit(w)
    assert _status(w, run_id) == "SUCCEEDED"
    assert _approvals(w, run_id) == []
    assert [r["reason"] for r in _refusals(w, run_id)] == [reason]
