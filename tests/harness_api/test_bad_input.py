"""Bad input gets a clear problem+json and changes nothing (no run, no job, no audit entry)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from harness.database.connect import unit_of_work
from harness.database.models import AuditEntry, Job, Run
from tests.support.api import World, world

pytestmark = [pytest.mark.tier1]


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url, max_task_chars=200) as it:
        yield it


def _counts(w: World) -> tuple[int, int, int]:
    with unit_of_work(w.rt.sessions) as s:
        return tuple(  # type: ignore[return-value]
            s.execute(select(func.count()).select_from(m)).scalar_one() for m in (Run, Job, AuditEntry)
        )


def _assert_problem(resp: Any, status: int, code: str, detail_part: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + code)
    assert detail_part in body["detail"]
    return body


RAW_CASES = [
    pytest.param(b"{not json", 400, "malformed-json", "not valid JSON", id="malformed-json"),
    pytest.param(b'{"task": "x", "colour": "red"}', 422, "validation-error", "colour", id="unknown-field"),
    pytest.param(b'{"task": 42}', 422, "validation-error", "task", id="wrong-type"),
    pytest.param(b'{"task": ""}', 422, "validation-error", "task", id="empty-task"),
    pytest.param(
        b'{"task": "x", "tools": "read_file"}', 422, "validation-error", "tools", id="tools-not-list"
    ),
    pytest.param(
        b'{"task": "x", "status": "SUCCEEDED"}', 422, "validation-error", "status", id="mass-assign-status"
    ),
    pytest.param(
        b'{"task": "x", "tenant_id": "globex"}', 422, "validation-error", "tenant_id", id="mass-assign-tenant"
    ),
    pytest.param(
        b'{"task": "x", "approved_by": "bob"}',
        422,
        "validation-error",
        "approved_by",
        id="mass-assign-approver",
    ),
    pytest.param(b"[]", 422, "validation-error", "body", id="array-body"),
]


@pytest.mark.parametrize(("raw", "status", "code", "detail"), RAW_CASES)
def test_bad_run_bodies(w: World, raw: bytes, status: int, code: str, detail: str) -> None:
    before = _counts(w)
    resp = w.client.post(
        "/api/harness/run", content=raw, headers=w.headers("alice", **{"Content-Type": "application/json"})
    )
    _assert_problem(resp, status, code, detail)
    assert _counts(w) == before


def test_oversized_task_is_refused(w: World) -> None:
    before = _counts(w)
    resp = w.post("run", "alice", {"task": "x" * 201})
    _assert_problem(resp, 422, "invalid-request", "limit is 200")
    assert _counts(w) == before


def test_body_over_the_cap_is_413(w: World) -> None:
    before = _counts(w)
    resp = w.client.post(
        "/api/harness/run",
        content=b'{"task": "' + b"x" * 70_000 + b'"}',
        headers=w.headers("alice", **{"Content-Type": "application/json"}),
    )
    _assert_problem(resp, 413, "payload-too-large", "exceeds")
    assert _counts(w) == before


def test_unknown_run_id_is_404(w: World) -> None:
    _assert_problem(w.get("runs/run_doesnotexist", "alice"), 404, "not-found", "run_doesnotexist")


def test_approving_a_run_that_is_not_awaiting_approval_is_409(w: World) -> None:
    run_id = w.post("run", "alice", {"task": "say hello"}).json()["run_id"]
    before = _counts(w)
    resp = w.post("approve", "bob", w.decision(run_id, "approve", "ok"))
    body = _assert_problem(resp, 409, "illegal-transition", "not AWAITING_APPROVAL")
    assert body["current"] == "PENDING"
    assert _counts(w) == before
    assert w.get(f"runs/{run_id}", "alice").json()["status"] == "PENDING"


@pytest.mark.parametrize(
    "body",
    [
        {"run_id": "r", "decision": "maybe", "reason": "x"},
        {"run_id": "r", "decision": "approve"},
        {"run_id": "r", "decision": "approve", "reason": "x", "approved_by": "bob"},
    ],
)
def test_bad_approve_bodies(w: World, body: dict[str, Any]) -> None:
    before = _counts(w)
    _assert_problem(w.post("approve", "bob", body), 422, "validation-error", "")
    assert _counts(w) == before


def test_openapi_is_served(w: World) -> None:
    doc = w.client.get("/openapi.json").json()
    assert {"/api/harness/run", "/api/harness/approve", "/api/harness/runs/{run_id}"} <= set(doc["paths"])
