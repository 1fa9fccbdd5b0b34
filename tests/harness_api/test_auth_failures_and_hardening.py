"""Failed authentication is limited per client address and audited; /metrics needs its own token;
artifact responses are hardened; stalled uploads time out (issue #8, section 6)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from harness.database.connect import unit_of_work
from harness.database.models import Artifact, AuditEntry
from tests.support.api import World, world
from tests.support.security import QUARTERLY_TASK, finished_run

pytestmark = [pytest.mark.tier1, pytest.mark.security]

FAILURES = 5
AUDITED = 3
METRICS_TOKEN = "metrics-token-for-tests-0123456789abcdef"


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(
        make_runtime,
        database_url,
        auth_failures_per_address=f"{FAILURES}/minute",
        auth_failure_audit_per_address=f"{AUDITED}/minute",
        metrics_token=METRICS_TOKEN,
    ) as it:
        yield it


def _client(w: World, address: str) -> TestClient:
    return TestClient(w.client.app, raise_server_exceptions=False, client=(address, 40000))


def _audited(w: World, action: str) -> list[AuditEntry]:
    with unit_of_work(w.rt.sessions) as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


def test_an_address_that_keeps_failing_is_refused_even_with_a_valid_key(w: World) -> None:
    attacker, bystander = _client(w, "203.0.113.7"), _client(w, "198.51.100.9")
    guess = {"Authorization": "Bearer hk_0000000000000000_" + "0" * 48}
    for _ in range(FAILURES):
        assert attacker.post("/api/harness/run", json={"task": "x"}, headers=guess).status_code == 401
    blocked = attacker.post("/api/harness/run", json={"task": "x"}, headers=w.headers("alice"))
    assert blocked.status_code == 429, blocked.text
    assert blocked.json()["type"].endswith("/too-many-failed-authentications")
    assert int(blocked.headers["Retry-After"]) >= 1
    # another address is not affected, and the attack spent no one's key budget
    ok = bystander.post("/api/harness/run", json={"task": "summarise"}, headers=w.headers("alice"))
    assert ok.status_code == 202, ok.text


def test_refusals_are_audited_redacted_and_capped(w: World) -> None:
    client = _client(w, "203.0.113.8")
    token = w.keys["alice"].token
    leaked = token[:-4] + "ffff"  # a near-miss of a real key: must never reach the log verbatim
    for _ in range(AUDITED + 2):
        client.get("/api/harness/runs/run_x", headers={"Authorization": f"Bearer {leaked}"})
    refused = _audited(w, "auth.refused")
    assert len(refused) == AUDITED, "the audit of refusals is not capped per address"
    entry = refused[0]
    assert (entry.actor, entry.tenant, entry.target) == ("anonymous", "-", "/api/harness/runs/run_x")
    assert entry.payload == {
        "status": 401,
        "code": "unauthorized",
        "method": "GET",
        "client": "203.0.113.8",
        "reason": "unknown",
    }
    assert leaked not in str([(e.actor, e.target, e.payload) for e in refused])


def test_a_403_is_audited_with_who_was_refused(w: World) -> None:
    resp = w.post("run", "bob", {"task": QUARTERLY_TASK})  # an approver cannot submit
    assert resp.status_code == 403
    (denied,) = _audited(w, "access.denied")
    assert (denied.actor, denied.tenant) == (w.keys["bob"].key_id, "acme")
    assert denied.payload["code"] == "forbidden"


def test_metrics_need_the_metrics_token_not_an_api_key(w: World) -> None:
    assert w.client.get("/metrics").status_code == 401
    assert w.client.get("/metrics", headers=w.headers("alice")).status_code == 401
    ok = w.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert ok.status_code == 200 and "harness_" in ok.text


def test_metrics_are_off_without_a_token(make_runtime: Any, database_url: str) -> None:
    with world(make_runtime, database_url) as w:
        resp = w.client.get("/metrics")
        assert resp.status_code == 404
        assert "HARNESS_METRICS_TOKEN" in resp.json()["detail"]


def test_artifact_responses_are_not_sniffed_and_download_safely(w: World) -> None:
    run_id = finished_run(w, submitter="alice", approver="bob").run_id
    resp = w.get(f"runs/{run_id}/artifacts/report.md", "alice")
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    disposition = "attachment; filename=\"report.md\"; filename*=UTF-8''report.md"
    assert resp.headers["Content-Disposition"] == disposition


def test_content_disposition_cannot_be_broken_out_of() -> None:
    from harness.api.routes import content_disposition

    header = content_disposition('dir/evil";\r\nSet-Cookie: x=1.md')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="evil____Set-Cookie__x_1.md"; filename*=UTF-8\'\'')
    assert header.count('"') == 2


def test_a_tampered_artifact_is_a_409_problem(w: World) -> None:
    run_id = finished_run(w, submitter="alice", approver="bob").run_id
    with unit_of_work(w.rt.sessions) as s:
        path = s.execute(select(Artifact.storage_path).where(Artifact.run_id == run_id)).scalar_one()
    with open(path, "a", encoding="utf-8") as f:
        f.write("<script>alert(1)</script>")
    resp = w.get(f"runs/{run_id}/artifacts/report.md", "alice")
    assert resp.status_code == 409, resp.text
    assert resp.json()["type"].endswith("/artifact-tampered")
    assert "script" not in resp.text


def test_a_stalled_upload_times_out_with_408(make_runtime: Any, database_url: str) -> None:
    with world(make_runtime, database_url, body_read_timeout_seconds=0.2) as w:
        app = w.client.app
        sent: list[dict[str, Any]] = []
        parts = [b'{"task": "hal']

        async def receive() -> dict[str, Any]:
            if parts:
                return {"type": "http.request", "body": parts.pop(), "more_body": True}
            await asyncio.Event().wait()  # the client stalls mid-body, forever
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/harness/run",
            "raw_path": b"/api/harness/run",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"authorization", f"Bearer {w.keys['alice'].token}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", b"40"),
            ],
            "client": ("192.0.2.1", 1234),
            "server": ("testserver", 80),
        }
        asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=60))
        start = next(m for m in sent if m["type"] == "http.response.start")
        assert start["status"] == 408
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        assert b"request-timeout" in body
