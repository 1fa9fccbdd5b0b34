"""Test plan: an attacker replays a captured signed request payload.

A legitimate client sends one signed ``POST /run`` with an Idempotency-Key; the fixture captures
it exactly as it went over the wire (httpx request hook). Replaying those bytes and headers, or
patching them without the secret, must be refused before idempotency or any write, so the run
executes once. The legitimate client's own retry (fresh nonce, same key and body) still gets the
stored response. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from harness.api.request_signing import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_headers
from harness.database.connect import unit_of_work
from harness.database.models import AuditEntry, Job, Nonce, Run
from tests.support.api import World, world

pytestmark = [pytest.mark.tier1, pytest.mark.security]

SECRET = b"e2e-request-signing-secret-000000001"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
T0 = int(NOW.timestamp())
BODY = b'{"task":"say hello"}'
IDEMPOTENCY_KEY = "order-7f3a-submit"


@dataclass
class FrozenClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass(frozen=True)
class CapturedRequest:
    """One request as sent: method, raw path, every header, body bytes."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def replay(self, client: httpx.Client, **changed: str) -> httpx.Response:
        """Send it again byte for byte; ``changed`` replaces headers (an attacker editing them)."""
        lowered = {k.lower(): v for k, v in changed.items()}
        headers = [(k, v) for k, v in self.headers if k.lower() not in lowered and k.lower() != "host"]
        headers += [(k, v) for k, v in changed.items() if v]
        return client.request(self.method, self.path, content=self.body, headers=headers)


def _world(make_runtime: Any, database_url: str, *, required: bool) -> Iterator[World]:
    with world(
        make_runtime,
        database_url,
        request_signing_secrets=[SECRET.decode()],
        require_signed_requests=required,
    ) as w:
        w.rt.clock = FrozenClock(NOW)
        yield w


@pytest.fixture(params=[True, False], ids=["signing-required", "signing-optional"])
def w(request: pytest.FixtureRequest, make_runtime: Any, database_url: str) -> Iterator[World]:
    yield from _world(make_runtime, database_url, required=request.param)


@pytest.fixture
def captured(w: World) -> CapturedRequest:
    """The captured signed request replay fixture: alice's signed POST /run, accepted (202)."""
    wire: list[httpx.Request] = []
    w.client.event_hooks["request"].append(wire.append)
    try:
        signed = signature_headers(
            SECRET,
            "POST",
            "/api/harness/run",
            BODY,
            timestamp=T0,
            nonce="alice-nonce-0000000001",
            key_id=w.keys["alice"].key_id,
        )
        resp = w.client.post(
            "/api/harness/run",
            content=BODY,
            headers=w.headers(
                "alice", **{"Content-Type": "application/json", "Idempotency-Key": IDEMPOTENCY_KEY}, **signed
            ),
        )
    finally:
        w.client.event_hooks["request"].remove(wire.append)
    assert resp.status_code == 202, resp.text
    (sent,) = wire
    return CapturedRequest(
        method=sent.method,
        path=sent.url.raw_path.decode("ascii"),
        headers=tuple(sent.headers.multi_items()),
        body=sent.content,
    )


def _count(w: World, model: Any, *where: Any) -> int:
    with unit_of_work(w.rt.sessions) as s:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def _assert_executed_once(w: World) -> None:
    w.drain()
    assert _count(w, Run) == 1
    assert _count(w, Job) == 1
    assert _count(w, AuditEntry, AuditEntry.action == "run.created") == 1
    assert len(w.sim.requests) <= 1  # one run, one model turn ("Nothing to do.")


def _assert_refused(resp: httpx.Response, code: str, reason: str) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["type"].endswith("/" + code)
    assert resp.json()["reason"] == reason
    assert "Idempotent-Replayed" not in resp.headers  # refused before the idempotency store


def test_exact_replay_is_refused_and_runs_once(w: World, captured: CapturedRequest) -> None:
    _assert_refused(captured.replay(w.client), "request-replayed", "nonce-reused")
    _assert_executed_once(w)
    assert _count(w, Run, Run.status == "SUCCEEDED") == 1


@pytest.mark.parametrize(
    "edit",
    [
        {"Idempotency-Key": ""},
        {"Idempotency-Key": "attacker-chosen-key"},
        {"Content-Type": "application/json; charset=utf-8"},
    ],
    ids=["idempotency-key-stripped", "idempotency-key-changed", "unsigned-header-changed"],
)
def test_replay_with_edited_unsigned_headers_is_still_a_replay(
    w: World, captured: CapturedRequest, edit: dict[str, str]
) -> None:
    # Only the nonce stands between these and a second run: the Idempotency-Key is not signed.
    _assert_refused(captured.replay(w.client, **edit), "request-replayed", "nonce-reused")
    _assert_executed_once(w)


@pytest.mark.parametrize(
    "edit",
    [
        {NONCE_HEADER: "attacker-nonce-000000001"},
        {TIMESTAMP_HEADER: str(T0 + 60)},
        {NONCE_HEADER: "attacker-nonce-000000002", TIMESTAMP_HEADER: str(T0 + 60)},
    ],
    ids=["fresh-nonce", "fresh-timestamp", "fresh-both"],
)
def test_replay_with_fresh_nonce_but_old_signature_is_refused(
    w: World, captured: CapturedRequest, edit: dict[str, str]
) -> None:
    _assert_refused(captured.replay(w.client, **edit), "invalid-signature", "signature-mismatch")
    _assert_executed_once(w)


@pytest.mark.parametrize("other", ["dave", "gina"], ids=["same-tenant-other-user", "other-tenant"])
def test_replay_under_another_bearer_key_is_refused(w: World, captured: CapturedRequest, other: str) -> None:
    """The key id is signed: the captured request resent with someone else's token does not match."""
    _assert_refused(
        captured.replay(w.client, Authorization=f"Bearer {w.keys[other].token}"),
        "invalid-signature",
        "signature-mismatch",
    )
    _assert_executed_once(w)


def test_a_spent_nonce_is_spent_for_every_bearer_key(w: World, captured: CapturedRequest) -> None:
    """Nonces are single-use per signing secret: dave cannot reuse alice's nonce, even signing anew."""
    by_dave = signature_headers(
        SECRET,
        "POST",
        "/api/harness/run",
        BODY,
        timestamp=T0 + 1,
        nonce="alice-nonce-0000000001",
        key_id=w.keys["dave"].key_id,
    )
    resp = w.client.post(
        "/api/harness/run",
        content=BODY,
        headers=w.headers("dave", **{"Content-Type": "application/json"}, **by_dave),
    )
    _assert_refused(resp, "request-replayed", "nonce-reused")
    _assert_executed_once(w)


def test_replay_after_the_window_is_refused_on_the_clock(w: World, captured: CapturedRequest) -> None:
    w.rt.clock = FrozenClock(NOW + timedelta(seconds=2 * 300 + 1))
    # Any signed request now prunes nonces older than two windows, the captured one included.
    fresh = signature_headers(
        SECRET,
        "GET",
        "/api/harness/runs/x",
        b"",
        timestamp=T0 + 601,
        nonce="alice-nonce-0000000002",
        key_id=w.keys["alice"].key_id,
    )
    assert w.client.get("/api/harness/runs/x", headers=w.headers("alice", **fresh)).status_code == 404
    assert _count(w, Nonce, Nonce.nonce == "alice-nonce-0000000001") == 0
    _assert_refused(captured.replay(w.client), "invalid-signature", "timestamp-out-of-window")
    _assert_executed_once(w)


def test_legitimate_retry_with_a_fresh_nonce_gets_the_stored_response(
    w: World, captured: CapturedRequest
) -> None:
    first = {k.lower(): v for k, v in captured.headers}
    retry = signature_headers(
        SECRET,
        "POST",
        "/api/harness/run",
        BODY,
        timestamp=T0 + 5,
        nonce="alice-nonce-0000000003",
        key_id=w.keys["alice"].key_id,
    )
    resp = captured.replay(w.client, **retry)
    assert resp.status_code == 202, resp.text
    assert resp.headers["Idempotent-Replayed"] == "true"
    assert resp.json()["run_id"].startswith("run_")
    assert retry[SIGNATURE_HEADER] != first[SIGNATURE_HEADER.lower()]
    with unit_of_work(w.rt.sessions) as s:
        (run_id,) = s.execute(select(Run.id)).scalars().all()
    assert resp.json()["run_id"] == run_id
    _assert_executed_once(w)


def test_replay_stripped_of_its_signature_meets_the_next_guard(w: World, captured: CapturedRequest) -> None:
    stripped = {TIMESTAMP_HEADER: "", NONCE_HEADER: "", SIGNATURE_HEADER: ""}
    resp = captured.replay(w.client, **stripped)
    if w.rt.settings.require_signed_requests:
        _assert_refused(resp, "invalid-signature", "missing-signature")
    else:
        # Signing optional: the unsigned copy passes signing, and the Idempotency-Key catches it.
        assert resp.status_code == 202, resp.text
        assert resp.headers["Idempotent-Replayed"] == "true"
    _assert_executed_once(w)
