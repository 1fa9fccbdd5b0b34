"""Request signing: HMAC over method, path, timestamp, nonce, key id and body; ±window; nonces; rotation.

Every refusal is a 401 problem+json naming what was wrong, and leaves no trace: no run, job,
audit entry, idempotency claim or spent nonce.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from harness.api.request_signing import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    canonical_string,
    key_id_of_token,
    prune_nonces,
    secret_fingerprint,
    sign,
    signature_headers,
)
from harness.clock import iso
from harness.database.connect import unit_of_work
from harness.database.models import AuditEntry, IdempotencyKey, Job, Nonce, Run
from harness.settings import Settings
from tests.support.api import World, world

pytestmark = [pytest.mark.tier1, pytest.mark.security]

CURRENT = b"current-signing-secret-for-tests-0001"
PREVIOUS = b"previous-signing-secret-for-tests-0002"
UNKNOWN = b"unknown-signing-secret-for-tests-0003"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
T0 = int(NOW.timestamp())
RUN = "/api/harness/run"
BODY = b'{"task":"say hello"}'


@dataclass
class FrozenClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


_nonces = (f"test-nonce-{i:010d}" for i in itertools.count())


def fresh_nonce() -> str:
    return next(_nonces)


def _make_world(
    make_runtime: Any, database_url: str, *, secrets: list[bytes], required: bool
) -> Iterator[World]:
    with world(
        make_runtime,
        database_url,
        request_signing_secrets=[s.decode() for s in secrets],
        require_signed_requests=required,
    ) as w:
        w.rt.clock = FrozenClock(NOW)
        yield w


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    """Signing required; current and previous secret configured (a rotation in progress)."""
    yield from _make_world(make_runtime, database_url, secrets=[CURRENT, PREVIOUS], required=True)


@pytest.fixture
def optional(make_runtime: Any, database_url: str) -> Iterator[World]:
    """Signing configured but not required: unsigned requests pass, signed ones are verified."""
    yield from _make_world(make_runtime, database_url, secrets=[CURRENT], required=False)


def send(
    w: World,
    *,
    who: str = "alice",
    method: str = "POST",
    path: str = RUN,
    body: bytes = BODY,
    secret: bytes | list[bytes] = CURRENT,
    timestamp: int = T0,
    nonce: str | None = None,
    signed_method: str | None = None,
    signed_path: str | None = None,
    signed_body: bytes | None = None,
    signed_key_id: str | None = None,
    edit: Callable[[dict[str, str]], Any] | None = None,
    extra: dict[str, str] | None = None,
) -> Any:
    """Sign (``signed_*`` overrides what is signed, to tamper), optionally edit the headers, send."""
    signed = signature_headers(
        secret,
        signed_method or method,
        signed_path or path,
        body if signed_body is None else signed_body,
        timestamp=timestamp,
        nonce=nonce or fresh_nonce(),
        key_id=signed_key_id or w.keys[who].key_id,
    )
    if edit is not None:
        edit(signed)
    headers = w.headers(who, **{"Content-Type": "application/json", **signed, **(extra or {})})
    return w.client.request(method, path, content=body, headers=headers)


def counts(w: World) -> dict[str, int]:
    """Side effects of a request; the audit of a refusal itself (auth.refused) is counted apart."""
    models = {"runs": Run, "jobs": Job, "idempotency": IdempotencyKey, "nonces": Nonce}
    with unit_of_work(w.rt.sessions) as s:
        found = {
            name: s.execute(select(func.count()).select_from(m)).scalar_one() for name, m in models.items()
        }
        found["audit"] = s.execute(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action != "auth.refused")
        ).scalar_one()
    return found


def refusals_audited(w: World) -> list[dict[str, Any]]:
    with unit_of_work(w.rt.sessions) as s:
        rows = s.execute(select(AuditEntry).where(AuditEntry.action == "auth.refused")).scalars()
        return [dict(r.payload) for r in rows]


def assert_refused(resp: Any, reason: str, code: str = "invalid-signature") -> dict[str, Any]:
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["type"].endswith("/" + code)
    assert problem["status"] == 401
    assert problem["reason"] == reason
    for secret in (CURRENT, PREVIOUS, UNKNOWN):
        assert secret.decode() not in resp.text
    return problem


# --- the algorithm --------------------------------------------------------------------------------


KEY = "key_0123456789abcdef"


def test_canonical_string_vector() -> None:
    # Cross-checked with `printf ... | sha256sum` and `openssl dgst -sha256 -hmac ...`.
    body_sha = "4427d3d791ae376f38a624d3a2f093d46e177a5ab944459bfe61a5ac4b108c67"
    expected = f"POST\n/api/harness/run?dry=1\n1767225600\nnonce-0123456789abcdef\n{KEY}\n{body_sha}".encode()
    got = canonical_string(
        "post", "/api/harness/run?dry=1", 1767225600, "nonce-0123456789abcdef", BODY, key_id=KEY
    )
    assert got == expected
    assert (
        sign(
            CURRENT, "post", "/api/harness/run?dry=1", 1767225600, "nonce-0123456789abcdef", BODY, key_id=KEY
        )
        == "v2=" + VECTOR_HMAC
    )


# printf 'POST\n/api/harness/run?dry=1\n1767225600\nnonce-0123456789abcdef\nkey_0123456789abcdef\n<body sha>'
#   | openssl dgst -sha256 -hmac current-signing-secret-for-tests-0001
VECTOR_HMAC = "55a52ef63607f6d518d92568a46ab9e34cf5f6c8b2a7658635fbccf7f822ab78"


def test_the_key_id_is_read_from_the_bearer_token() -> None:
    assert key_id_of_token("hk_0123456789abcdef_" + "a" * 48) == KEY
    with pytest.raises(ValueError, match="not a harness API key"):
        key_id_of_token("sk-live-something")


def test_canonical_string_refuses_newlines_that_would_blur_the_fields() -> None:
    with pytest.raises(ValueError, match="newline"):
        canonical_string("POST", "/api/harness/run\n1767225600", 0, "nonce-0123456789abcdef", b"", key_id=KEY)
    with pytest.raises(ValueError, match="newline"):
        canonical_string("POST", RUN, 0, "nonce-0123456789abcdef", b"", key_id=KEY + "\n")


def test_signature_headers_carry_one_value_per_secret() -> None:
    headers = signature_headers(
        [CURRENT, PREVIOUS], "POST", RUN, BODY, timestamp=T0, nonce="n" * 16, key_id=KEY
    )
    assert headers[TIMESTAMP_HEADER] == str(T0)
    assert headers[NONCE_HEADER] == "n" * 16
    assert headers[SIGNATURE_HEADER] == ", ".join(
        sign(s, "POST", RUN, T0, "n" * 16, BODY, key_id=KEY) for s in (CURRENT, PREVIOUS)
    )


# --- accepted -------------------------------------------------------------------------------------


def test_signed_request_is_accepted_and_spends_its_nonce(w: World) -> None:
    resp = send(w, nonce="accepted-nonce-0001")
    assert resp.status_code == 202, resp.text
    assert counts(w)["runs"] == 1
    with unit_of_work(w.rt.sessions) as s:
        spent = s.execute(select(Nonce)).scalar_one()
    assert (spent.scope, spent.nonce, spent.seen_at) == (
        secret_fingerprint(CURRENT),
        "accepted-nonce-0001",
        iso(NOW),
    )


def test_signed_get_with_query_is_accepted(w: World) -> None:
    run_id = send(w).json()["run_id"]
    path = f"/api/harness/runs/{run_id}?view=full"
    resp = send(w, method="GET", path=path, body=b"")
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == run_id


@pytest.mark.parametrize("offset", [-300, 300], ids=["300s-past", "300s-future"])
def test_timestamp_at_the_edge_of_the_window_is_accepted(w: World, offset: int) -> None:
    resp = send(w, timestamp=T0 + offset)
    assert resp.status_code == 202, resp.text


def test_signature_is_over_the_exact_bytes_received(w: World) -> None:
    spaced = b'{ "task" :  "say hello" }'
    assert send(w, body=spaced).status_code == 202
    before = counts(w)
    # Same JSON, other bytes: the server must not re-serialise before checking.
    assert_refused(send(w, body=spaced, signed_body=BODY), "signature-mismatch")
    assert counts(w) == before


def test_nonces_are_single_use_per_secret_not_per_key(w: World) -> None:
    assert send(w, who="alice", nonce="shared-nonce-00001").status_code == 202
    before = counts(w)
    # dave signs his own, valid request but reuses the nonce: under this secret it is spent.
    assert_refused(send(w, who="dave", nonce="shared-nonce-00001"), "nonce-reused", code="request-replayed")
    assert_refused(send(w, who="gina", nonce="shared-nonce-00001"), "nonce-reused", code="request-replayed")
    assert counts(w) == before


def test_a_nonce_spent_under_both_rotating_secrets_cannot_be_resent_under_either(w: World) -> None:
    assert send(w, secret=[CURRENT, PREVIOUS], nonce="rotating-nonce-0001").status_code == 202
    for secret in (CURRENT, PREVIOUS):
        assert_refused(
            send(w, secret=secret, nonce="rotating-nonce-0001"), "nonce-reused", code="request-replayed"
        )


def test_a_request_signed_for_another_key_is_refused(w: World) -> None:
    """The key id is in the signed string: alice's signature does not vouch for dave's token."""
    before = counts(w)
    resp = send(w, who="dave", signed_key_id=w.keys["alice"].key_id)
    assert_refused(resp, "signature-mismatch")
    assert counts(w) == before


# --- refused, and nothing happens -----------------------------------------------------------------


def _drop(*names: str) -> Callable[[dict[str, str]], None]:
    def edit(headers: dict[str, str]) -> None:
        for name in names:
            del headers[name]

    return edit


def _set(name: str, value: str) -> Callable[[dict[str, str]], None]:
    def edit(headers: dict[str, str]) -> None:
        headers[name] = value

    return edit


REFUSALS = [
    pytest.param(
        {"edit": _drop(TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)}, "missing-signature", id="unsigned"
    ),
    pytest.param({"edit": _drop(TIMESTAMP_HEADER)}, "missing-header", id="no-timestamp"),
    pytest.param({"edit": _drop(NONCE_HEADER)}, "missing-header", id="no-nonce"),
    pytest.param({"edit": _drop(SIGNATURE_HEADER)}, "missing-header", id="no-signature"),
    pytest.param({"signed_body": b'{"task":"say goodbye"}'}, "signature-mismatch", id="tampered-body"),
    pytest.param({"signed_path": "/api/harness/approve"}, "signature-mismatch", id="tampered-path"),
    pytest.param({"path": RUN + "?dry=1", "signed_path": RUN}, "signature-mismatch", id="tampered-query"),
    pytest.param({"signed_method": "PUT"}, "signature-mismatch", id="wrong-method"),
    pytest.param({"secret": UNKNOWN}, "signature-mismatch", id="wrong-secret"),
    pytest.param({"timestamp": T0 - 301}, "timestamp-out-of-window", id="301s-past"),
    pytest.param({"timestamp": T0 + 301}, "timestamp-out-of-window", id="301s-future"),
    pytest.param({"edit": _set(TIMESTAMP_HEADER, "soon")}, "malformed-timestamp", id="timestamp-word"),
    pytest.param({"edit": _set(TIMESTAMP_HEADER, f"{T0}.5")}, "malformed-timestamp", id="timestamp-fraction"),
    pytest.param({"edit": _set(TIMESTAMP_HEADER, f"-{T0}")}, "malformed-timestamp", id="timestamp-negative"),
    pytest.param(
        {"edit": _set(TIMESTAMP_HEADER, "2026-01-01T00:00:00Z")}, "malformed-timestamp", id="timestamp-iso"
    ),
    pytest.param({"nonce": "short-nonce"}, "malformed-nonce", id="nonce-too-short"),
    pytest.param({"nonce": "n" * 129}, "malformed-nonce", id="nonce-too-long"),
    pytest.param({"nonce": "nonce.with.dots.0001"}, "malformed-nonce", id="nonce-bad-chars"),
    pytest.param(
        {"edit": _set(SIGNATURE_HEADER, "sha256=" + "0" * 64)}, "malformed-signature", id="sig-scheme"
    ),
    pytest.param({"edit": _set(SIGNATURE_HEADER, "v2=not-hex")}, "malformed-signature", id="sig-not-hex"),
    pytest.param(
        {"edit": _set(SIGNATURE_HEADER, "v1=" + "0" * 64)}, "unsupported-scheme", id="sig-retired-v1"
    ),
    pytest.param(
        {"signed_key_id": "key_0000000000000000"}, "signature-mismatch", id="signed-for-another-key"
    ),
    pytest.param({"secret": [UNKNOWN] * 4 + [CURRENT]}, "malformed-signature", id="sig-too-many-values"),
]


@pytest.mark.parametrize(("tamper", "reason"), REFUSALS)
def test_refused_request_is_401_and_changes_nothing(w: World, tamper: dict[str, Any], reason: str) -> None:
    before = counts(w)
    problem = assert_refused(send(w, extra={"Idempotency-Key": "refused-1"}, **tamper), reason)
    assert problem["instance"].startswith("/api/harness/run")
    assert counts(w) == before
    # ...but the refusal itself is audited, with its reason and without any credential
    (audited,) = refusals_audited(w)
    assert (audited["status"], audited["reason"]) == (401, reason)
    assert w.keys["alice"].token not in str(audited)


def test_repeated_timestamp_header_is_refused(w: World) -> None:
    headers = signature_headers(
        CURRENT, "POST", RUN, BODY, timestamp=T0, nonce=fresh_nonce(), key_id=w.keys["alice"].key_id
    )
    pairs = [*w.headers("alice").items(), *headers.items(), (TIMESTAMP_HEADER, str(T0 + 1))]
    before = counts(w)
    assert_refused(w.client.post(RUN, content=BODY, headers=pairs), "repeated-header")
    assert counts(w) == before


def test_unsigned_get_is_refused_when_signing_is_required(w: World) -> None:
    assert_refused(w.get("runs/run_anything", "alice"), "missing-signature")


def test_problem_names_the_skew_and_leaks_no_signature(w: World) -> None:
    problem = assert_refused(send(w, timestamp=T0 - 301), "timestamp-out-of-window")
    assert "301s in the past" in problem["detail"]
    assert "±300s" in problem["detail"]
    resp = send(w, secret=UNKNOWN, nonce="leak-check-nonce-01")
    expected = sign(CURRENT, "POST", RUN, T0, "leak-check-nonce-01", BODY, key_id=w.keys["alice"].key_id)
    assert_refused(resp, "signature-mismatch")
    assert expected.removeprefix("v2=") not in resp.text


def test_replayed_request_is_refused_as_request_replayed(w: World) -> None:
    assert send(w, nonce="replayed-nonce-0001").status_code == 202
    before = counts(w)
    problem = assert_refused(send(w, nonce="replayed-nonce-0001"), "nonce-reused", code="request-replayed")
    assert "fresh nonce" in problem["detail"]
    assert counts(w) == before


# --- key rotation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [PREVIOUS, [CURRENT, PREVIOUS], [PREVIOUS, CURRENT], [UNKNOWN, CURRENT]],
    ids=["previous", "new-and-old", "old-and-new", "unknown-and-current"],
)
def test_rotation_accepts_any_value_under_any_configured_secret(w: World, secret: Any) -> None:
    resp = send(w, secret=secret)
    assert resp.status_code == 202, resp.text


def test_rotation_refuses_only_unknown_secrets(w: World) -> None:
    before = counts(w)
    assert_refused(send(w, secret=[UNKNOWN, UNKNOWN]), "signature-mismatch")
    assert counts(w) == before


# --- optional mode and signing off ----------------------------------------------------------------


def test_optional_mode_passes_unsigned_requests(optional: World) -> None:
    assert optional.post("run", "alice", {"task": "say hello"}).status_code == 202
    assert counts(optional)["nonces"] == 0


def test_optional_mode_still_verifies_signed_requests(optional: World) -> None:
    before = counts(optional)
    assert_refused(send(optional, signed_body=b"{}"), "signature-mismatch")
    assert_refused(send(optional, edit=_drop(SIGNATURE_HEADER)), "missing-header")
    assert_refused(send(optional, secret=PREVIOUS), "signature-mismatch")
    assert counts(optional) == before
    assert send(optional).status_code == 202


def test_without_secrets_signature_headers_are_ignored(make_runtime: Any, database_url: str) -> None:
    with world(make_runtime, database_url) as w:
        resp = send(w, secret=UNKNOWN)
        assert resp.status_code == 202, resp.text
        assert counts(w)["nonces"] == 0


# --- nonce pruning --------------------------------------------------------------------------------


def test_nonces_older_than_twice_the_window_are_pruned(w: World) -> None:
    assert send(w, nonce="old-nonce-00000001").status_code == 202
    w.rt.clock = FrozenClock(NOW + timedelta(seconds=600))
    assert prune_nonces(w.rt) == 0  # exactly two windows old: still kept
    later = NOW + timedelta(seconds=601)
    w.rt.clock = FrozenClock(later)
    # The next accepted request prunes opportunistically; the old nonce cannot be replayed anyway.
    assert send(w, timestamp=T0 + 601, nonce="new-nonce-00000001").status_code == 202
    with unit_of_work(w.rt.sessions) as s:
        assert [n.nonce for n in s.execute(select(Nonce)).scalars()] == ["new-nonce-00000001"]
    assert_refused(send(w, nonce="old-nonce-00000001"), "timestamp-out-of-window")


# --- settings -------------------------------------------------------------------------------------


def test_required_signing_without_secrets_fails_loudly() -> None:
    with pytest.raises(ValidationError, match="request_signing_secrets is empty"):
        Settings(require_signed_requests=True)


def test_short_signing_secret_fails_loudly() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(request_signing_secrets=["too-short"])


def test_secrets_come_from_a_json_list_in_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_REQUEST_SIGNING_SECRETS", f'["{CURRENT.decode()}", "{PREVIOUS.decode()}"]')
    monkeypatch.setenv("HARNESS_REQUIRE_SIGNED_REQUESTS", "true")
    settings = Settings()
    assert [s.get_secret_value() for s in settings.request_signing_secrets] == [
        CURRENT.decode(),
        PREVIOUS.decode(),
    ]
    assert settings.require_signed_requests
    assert CURRENT.decode() not in repr(settings)
