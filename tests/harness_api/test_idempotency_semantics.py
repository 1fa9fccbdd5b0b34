"""Idempotency-Key semantics (IETF httpapi draft) through the in-process API, on SQLite and PostgreSQL.

Same key + same canonical body replays the stored response; another body is 422; failures are
not stored; keys are scoped per tenant; expired keys are treated as new and pruned.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from harness.accounts import issue_key
from harness.api import idempotency
from harness.canonical import digest
from harness.clock import iso
from harness.database.connect import unit_of_work
from harness.database.models import IdempotencyKey, Run
from harness.errors import IdempotencyConflict
from tests.support.api import World, world

pytestmark = [pytest.mark.tier1, pytest.mark.security]

TTL = 600
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
# freezegun getattr()s every loaded module's names; on ``replay`` that triggers its lazy imports
# under the fake datetime, and pydantic cannot build schemas for FakeDatetime.
NOT_FROZEN = ["replay"]


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url, max_task_chars=200, idempotency_ttl_seconds=TTL) as it:
        yield it


def _submit(w: World, who: str, raw: str, key: str) -> Any:
    """POST raw JSON text, so key order and whitespace are exactly what the test wrote."""
    return w.client.post(
        "/api/harness/run",
        content=raw.encode(),
        headers=w.headers(who, **{"Idempotency-Key": key, "Content-Type": "application/json"}),
    )


def _runs(w: World) -> list[Run]:
    with unit_of_work(w.rt.sessions) as s:
        return list(s.execute(select(Run).order_by(Run.created_at, Run.id)).scalars())


def _keys(w: World) -> list[tuple[str, str, str]]:
    with unit_of_work(w.rt.sessions) as s:
        rows = s.execute(select(IdempotencyKey).order_by(IdempotencyKey.tenant_id)).scalars()
        return [(k.tenant_id, k.key, k.state) for k in rows]


def _assert_problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["type"].endswith("/" + code), body
    return body


def test_same_canonical_body_replays_the_stored_response(w: World) -> None:
    first = _submit(w, "alice", '{"task": "summarise the workspace", "tools": ["list_files"]}', "k-1")
    again = _submit(w, "alice", '{ "tools":["list_files"],\n  "task":"summarise the workspace" }', "k-1")

    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert [r.id for r in _runs(w)] == [first.json()["run_id"]]


def test_same_key_with_another_body_is_refused(w: World) -> None:
    first = _submit(w, "alice", '{"task": "summarise the workspace"}', "k-2")
    other = _submit(w, "alice", '{"task": "summarise the workspace", "tools": []}', "k-2")

    assert first.status_code == 202
    body = _assert_problem(other, 422, "invalid-request")
    assert body["field"] == "Idempotency-Key"
    assert "different request body" in body["detail"]
    assert len(_runs(w)) == 1


def test_a_failed_request_is_not_stored(w: World) -> None:
    too_long = json.dumps({"task": "x" * 201})
    refused = _submit(w, "alice", too_long, "k-3")
    _assert_problem(refused, 422, "invalid-request")
    assert _keys(w) == [] and _runs(w) == []

    schema_error = _submit(w, "alice", '{"task": "ok", "temperature": 2}', "k-3")
    _assert_problem(schema_error, 422, "validation-error")
    assert _keys(w) == []

    fixed = _submit(w, "alice", '{"task": "summarise the workspace"}', "k-3")
    assert fixed.status_code == 202 and "Idempotent-Replayed" not in fixed.headers
    replayed = _submit(w, "alice", '{"task": "summarise the workspace"}', "k-3")
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["run_id"] == fixed.json()["run_id"]
    assert _keys(w) == [("acme", "k-3", "completed")]


def test_keys_are_scoped_per_tenant(w: World) -> None:
    raw = '{"task": "summarise the workspace"}'
    acme = _submit(w, "alice", raw, "shared-key")
    globex = _submit(w, "gina", raw, "shared-key")

    assert acme.status_code == 202 and globex.status_code == 202
    assert "Idempotent-Replayed" not in globex.headers
    assert acme.json()["run_id"] != globex.json()["run_id"]
    assert {(r.id, r.tenant_id) for r in _runs(w)} == {
        (acme.json()["run_id"], "acme"),
        (globex.json()["run_id"], "globex"),
    }
    # globex cannot read acme's run by replaying acme's key either
    assert w.get(f"runs/{acme.json()['run_id']}", "gina").status_code == 404


def test_keys_are_scoped_per_principal(w: World) -> None:
    """Two people of one tenant using the same key string get their own runs, not each other's."""
    raw = '{"task": "summarise the workspace"}'
    alice = _submit(w, "alice", raw, "shared-key")
    dave = _submit(w, "dave", raw, "shared-key")

    assert alice.status_code == 202 and dave.status_code == 202, (alice.text, dave.text)
    assert "Idempotent-Replayed" not in dave.headers
    assert alice.json()["run_id"] != dave.json()["run_id"]
    submitted = {r.id: r.submitted_by for r in _runs(w)}
    assert submitted == {
        alice.json()["run_id"]: w.keys["alice"].key_id,
        dave.json()["run_id"]: w.keys["dave"].key_id,
    }
    # the same principal through a second key is still the same client: it gets its replay
    w.keys["alice-ci"] = issue_key(
        w.rt, tenant_id="acme", name="alice-ci", roles=["submitter"], principal="alice"
    )
    again = _submit(w, "alice-ci", raw, "shared-key")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["run_id"] == alice.json()["run_id"]


def test_a_key_in_flight_is_a_conflict(w: World) -> None:
    raw = '{"task": "summarise the workspace"}'
    tenant = w.keys["alice"].tenant_id
    payload = {"task": "summarise the workspace", "model": None, "tools": None}
    assert (
        idempotency.claim(
            w.rt, tenant_id=tenant, principal="alice", key="k-4", request_digest=digest(payload)
        )
        is None
    )

    _assert_problem(_submit(w, "alice", raw, "k-4"), 409, "idempotency-conflict")
    assert _runs(w) == []


def test_an_invalid_key_is_refused(w: World) -> None:
    _assert_problem(_submit(w, "alice", '{"task": "t"}', "k" * 256), 422, "invalid-request")
    _assert_problem(_submit(w, "alice", '{"task": "t"}', "tab\there"), 422, "invalid-request")
    assert _keys(w) == [] and _runs(w) == []


def test_expired_keys_are_new_and_pruned(w: World) -> None:
    raw = '{"task": "summarise the workspace"}'
    with freeze_time(START, ignore=NOT_FROZEN) as frozen:
        first = _submit(w, "alice", raw, "k-5")
        _submit(w, "gina", raw, "k-6")
        frozen.tick(timedelta(seconds=TTL - 1))
        assert _submit(w, "alice", raw, "k-5").headers.get("Idempotent-Replayed") == "true"
        assert idempotency.prune(w.rt) == 0

        frozen.tick(timedelta(seconds=2))
        revived = _submit(w, "alice", raw, "k-5")
        assert revived.status_code == 202 and "Idempotent-Replayed" not in revived.headers
        assert revived.json()["run_id"] != first.json()["run_id"]

        assert idempotency.prune(w.rt) == 1  # globex's k-6; acme's k-5 was just renewed
        assert _keys(w) == [("acme", "k-5", "completed")]
        frozen.tick(timedelta(seconds=TTL))
        assert idempotency.prune(w.rt) == 1
        assert _keys(w) == []


def test_claims_prune_expired_keys_now_and_then(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idempotency, "PRUNING", idempotency.PruneSchedule(every=3))
    raw = '{"task": "summarise the workspace"}'
    with freeze_time(START, ignore=NOT_FROZEN) as frozen:
        _submit(w, "gina", raw, "stale")  # claim 1
        frozen.tick(timedelta(seconds=TTL + 1))
        _submit(w, "alice", raw, "fresh-1")  # claim 2: no pruning yet
        assert ("globex", "stale", "completed") in _keys(w)
        _submit(w, "alice", raw, "fresh-2")  # claim 3: prunes
    assert _keys(w) == [("acme", "fresh-1", "completed"), ("acme", "fresh-2", "completed")]


def test_concurrent_claims_reviving_an_expired_key_elect_one_winner(w: World) -> None:
    """Many requests find the same expired key at once: one claims it, the rest see it in flight."""
    request_digest = digest({"task": "summarise the workspace", "model": None, "tools": None})
    now = w.rt.clock.now()
    with unit_of_work(w.rt.sessions) as s:
        s.add(
            IdempotencyKey(
                tenant_id="acme",
                principal="alice",
                key="k-7",
                request_digest=request_digest,
                state="completed",
                response_status=202,
                response_body={"run_id": "run_old"},
                created_at=iso(now - timedelta(seconds=2 * TTL)),
                expires_at=iso(now - timedelta(seconds=TTL)),
            )
        )
    contenders = 16
    barrier = threading.Barrier(contenders)

    def contend(_: int) -> str:
        barrier.wait(timeout=30)
        try:
            won = idempotency.claim(
                w.rt, tenant_id="acme", principal="alice", key="k-7", request_digest=request_digest
            )
        except IdempotencyConflict:
            return "in-flight"
        return "claimed" if won is None else "replayed"

    with ThreadPoolExecutor(max_workers=contenders) as pool:
        outcomes = sorted(pool.map(contend, range(contenders)))

    assert outcomes == ["claimed"] + ["in-flight"] * (contenders - 1)
    with unit_of_work(w.rt.sessions) as s:
        assert s.execute(select(func.count()).select_from(IdempotencyKey)).scalar_one() == 1
        assert s.get_one(IdempotencyKey, ("acme", "alice", "k-7")).state == "in_flight"
