"""Request signing: HMAC-SHA256 over method, path, timestamp, nonce, the caller's key id and the body
digest, plus replay defence.

A client signs the canonical string (see :func:`canonical_string`) with a shared secret and sends::

    X-Harness-Timestamp: 1767225600             unix seconds, within ±signature_window_seconds
    X-Harness-Nonce:     3q2-7wEj_bY9kPq0xXc1   16-128 chars of [A-Za-z0-9_-], never reused
    X-Harness-Signature: v2=<hex>[, v2=<hex>]   several values while a client rotates its secret

The key id (``key_<16 chars>``, the middle of the bearer token ``hk_<16 chars>_<secret>``; see
:func:`key_id_of_token`) is part of the signed string, so a captured request resent with another
bearer token no longer matches. ``v1`` (the same string without the key id) is refused.

The server (:func:`verify_request`) accepts when any signature value matches any configured secret
(``Settings.request_signing_secrets``: current first, previous after), the timestamp is within the
window of the harness clock (past *and* future), and the nonce has never been spent under a secret
that vouched for this request: each accepted nonce is written to the ``nonces`` table, scoped by the
fingerprint of every matching secret, in its own transaction, so a replayed request (under any bearer
key) loses on the primary key and gets ``401 request-replayed``. A nonce is spent once the signature
checks out, whatever happens to the request afterwards (validation error, idempotency replay, ...).

Every refusal is a 401 problem naming what was wrong (``reason``); none echoes a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from harness.clock import iso
from harness.database.connect import unit_of_work
from harness.database.models import Nonce
from harness.errors import Unauthorized
from harness.observability import get_logger
from harness.runtime import Runtime

TIMESTAMP_HEADER = "X-Harness-Timestamp"
NONCE_HEADER = "X-Harness-Nonce"
SIGNATURE_HEADER = "X-Harness-Signature"
SIGNED_HEADERS = (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
SIGNATURE_SCHEME = "v2"
RETIRED_SCHEMES = frozenset({"v1"})  # signed no caller: a captured request could be resent by anyone
# More values than this is not a rotation, it is someone fishing; each value costs an HMAC per secret.
MAX_SIGNATURE_VALUES = 4

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_SIGNATURE_VALUE = re.compile(r"(v[0-9]+)=([0-9a-f]{64})")
_TOKEN = re.compile(r"hk_(?P<id>[a-z0-9]{16})_[a-f0-9]{48}")

log = get_logger(__name__)


class SignatureRejected(Unauthorized):
    """The request's signature headers are missing, malformed, stale or do not match."""

    code = "invalid-signature"


class RequestReplayed(Unauthorized):
    """The request's nonce was already spent under this signing secret: a replay (or a reused nonce)."""

    code = "request-replayed"


class HeaderLookup(Protocol):
    """The one method of Starlette's ``Headers`` this module needs (keeps the web framework out)."""

    def getlist(self, key: str) -> list[str]: ...


# --- client side (pure) ---------------------------------------------------------------------------


def key_id_of_token(token: str) -> str:
    """The key id a bearer token ``hk_<id>_<secret>`` stands for: ``key_<id>`` (what gets signed)."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise ValueError("not a harness API key (expected hk_<16 chars>_<48 hex>)")
    return f"key_{match.group('id')}"


def canonical_string(
    method: str, path: str, timestamp: int, nonce: str, body: bytes, *, key_id: str
) -> bytes:
    """``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nKEY_ID\\nsha256(body)``: the bytes that get signed."""
    fields = (method.upper(), path, str(int(timestamp)), nonce, key_id)
    if any("\n" in f for f in fields):
        raise ValueError(
            "method, path, nonce and key id must not contain a newline (it separates the fields)"
        )
    return "\n".join((*fields, hashlib.sha256(body).hexdigest())).encode("utf-8")


def sign(
    secret: bytes, method: str, path: str, timestamp: int, nonce: str, body: bytes, *, key_id: str
) -> str:
    """One signature value: ``v2=`` + hex HMAC-SHA256 of the canonical string."""
    message = canonical_string(method, path, timestamp, nonce, body, key_id=key_id)
    mac = hmac.new(secret, message, hashlib.sha256)
    return f"{SIGNATURE_SCHEME}={mac.hexdigest()}"


def secret_fingerprint(secret: bytes) -> str:
    """The scope a nonce is spent in: names the secret without revealing it."""
    return "hmac-sha256:" + hashlib.sha256(b"harness-nonce-scope\n" + secret).hexdigest()[:32]


def signature_headers(
    secret: bytes | Sequence[bytes],
    method: str,
    path: str,
    body: bytes,
    *,
    timestamp: int,
    nonce: str,
    key_id: str,
) -> dict[str, str]:
    """The three headers for a request by ``key_id``; pass several secrets (new, old) while rotating."""
    secrets = [secret] if isinstance(secret, bytes) else list(secret)
    if not secrets:
        raise ValueError("signature_headers needs at least one secret")
    return {
        TIMESTAMP_HEADER: str(int(timestamp)),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: ", ".join(
            sign(s, method, path, timestamp, nonce, body, key_id=key_id) for s in secrets
        ),
    }


# --- server side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """What a valid signature vouches for."""

    timestamp: int
    nonce: str
    scopes: tuple[str, ...]  # fingerprints of the secrets that matched: the nonce is spent in each


def check_signature(
    *,
    secrets: Sequence[bytes],
    method: str,
    path: str,
    body: bytes,
    key_id: str,
    timestamp: str,
    nonce: str,
    signature: str,
    now: datetime,
    window_seconds: int,
) -> SignedRequest:
    """Validate the header values against the secrets and the clock; pure (the nonce store is apart)."""
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureRejected(
            f"{TIMESTAMP_HEADER} must be unix seconds (ASCII digits only)", reason="malformed-timestamp"
        )
    if not _NONCE.fullmatch(nonce):
        raise SignatureRejected(
            f"{NONCE_HEADER} must be 16-128 characters of A-Z, a-z, 0-9, '_' and '-'",
            reason="malformed-nonce",
        )
    candidates = _signature_values(signature)
    skew = int(timestamp) - now.timestamp()
    if abs(skew) > window_seconds:
        direction = "in the future" if skew > 0 else "in the past"
        raise SignatureRejected(
            f"{TIMESTAMP_HEADER} is {math.ceil(abs(skew))}s {direction}; allowed skew is ±{window_seconds}s"
            " (check the client's clock, then sign again with a fresh nonce)",
            reason="timestamp-out-of-window",
        )
    expected = [
        sign(s, method, path, int(timestamp), nonce, body, key_id=key_id).removeprefix("v2=") for s in secrets
    ]
    # Compare every pair (no early exit) so timing says nothing about which value or secret matched.
    matched = [any([hmac.compare_digest(e, c) for c in candidates]) for e in expected]
    if not any(matched):
        raise SignatureRejected(
            f"{SIGNATURE_HEADER} does not match {method.upper()} {path} by {key_id} with this timestamp,"
            " nonce and body under any current signing secret",
            reason="signature-mismatch",
        )
    scopes = tuple(secret_fingerprint(s) for s, ok in zip(secrets, matched, strict=True) if ok)
    return SignedRequest(timestamp=int(timestamp), nonce=nonce, scopes=scopes)


def _signature_values(header: str) -> list[str]:
    values = [v.strip() for v in header.split(",") if v.strip()]
    if not values or len(values) > MAX_SIGNATURE_VALUES:
        raise SignatureRejected(
            f"{SIGNATURE_HEADER} must carry 1-{MAX_SIGNATURE_VALUES} comma-separated 'v1=<hex>' values",
            reason="malformed-signature",
        )
    found = [_SIGNATURE_VALUE.fullmatch(v.lower()) for v in values]
    if not all(found):
        raise SignatureRejected(
            f"{SIGNATURE_HEADER} values must look like 'v2=' followed by 64 hex digits",
            reason="malformed-signature",
        )
    schemes = {m.group(1) for m in found if m is not None}
    if schemes & RETIRED_SCHEMES:
        raise SignatureRejected(
            f"{SIGNATURE_HEADER} scheme v1 is retired: it did not sign the caller's key id; sign the v2"
            " canonical string (method, path, timestamp, nonce, key id, body digest)",
            reason="unsupported-scheme",
        )
    if schemes != {SIGNATURE_SCHEME}:
        raise SignatureRejected(
            f"{SIGNATURE_HEADER} scheme must be {SIGNATURE_SCHEME}", reason="unsupported-scheme"
        )
    return [m.group(2) for m in found if m is not None]


class NonceStore:
    """Spends (secret scope, nonce) pairs in the ``nonces`` table; prunes old ones at most once a window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_prune: datetime | None = None

    def spend(self, rt: Runtime, *, scopes: Sequence[str], nonce: str) -> None:
        """Record the nonce under every matching secret, in its own transaction; any second use
        (by whichever bearer key) is a replay."""
        now = rt.clock.now()
        try:
            with unit_of_work(rt.sessions) as session:
                for scope in sorted(set(scopes)):
                    session.add(Nonce(scope=scope, nonce=nonce, seen_at=iso(now)))
                    session.flush()
        except IntegrityError:
            raise RequestReplayed(
                f"this {NONCE_HEADER} was already used under this signing secret; sign each request"
                " with a fresh nonce",
                reason="nonce-reused",
            ) from None
        if self._prune_due(now, rt.settings.signature_window_seconds):
            try:
                prune_nonces(rt)
            except SQLAlchemyError as exc:  # housekeeping must never fail the request it rides on
                log.warning("nonce pruning failed; will retry next window", error=type(exc).__name__)

    def _prune_due(self, now: datetime, window_seconds: int) -> bool:
        with self._lock:
            if self._next_prune is not None and now < self._next_prune:
                return False
            self._next_prune = now + timedelta(seconds=window_seconds)
            return True


def prune_nonces(rt: Runtime) -> int:
    """Forget nonces older than twice the window; returns how many.

    Safe because any request reusing one would carry a timestamp more than a window old
    (it was accepted within a window of ``seen_at``) and be refused on the clock alone.
    """
    horizon = rt.clock.now() - timedelta(seconds=2 * rt.settings.signature_window_seconds)
    with unit_of_work(rt.sessions) as session:
        result = session.execute(delete(Nonce).where(Nonce.seen_at < iso(horizon)))
        return int(result.rowcount)  # type: ignore[attr-defined]


def verify_request(
    rt: Runtime,
    nonces: NonceStore,
    *,
    key_id: str,
    method: str,
    path: str,
    body: bytes,
    headers: HeaderLookup,
) -> SignedRequest | None:
    """Enforce the signing policy of ``rt.settings`` on one authenticated request.

    No secrets configured: signing is off (headers ignored). Secrets configured: a request that
    carries any signature header is verified in full; an unsigned one passes only when
    ``require_signed_requests`` is false. Returns what was verified, or None for an unsigned pass.
    """
    settings = rt.settings
    secrets = [s.get_secret_value().encode("utf-8") for s in settings.request_signing_secrets]
    if not secrets:
        return None
    values = {name: headers.getlist(name) for name in SIGNED_HEADERS}
    if not any(values.values()):
        if settings.require_signed_requests:
            raise SignatureRejected(
                f"this API requires signed requests: send {', '.join(SIGNED_HEADERS)}",
                reason="missing-signature",
            )
        return None
    missing = [name for name, got in values.items() if not got]
    if missing:
        raise SignatureRejected(
            f"a signed request needs all of {', '.join(SIGNED_HEADERS)}; missing {', '.join(missing)}",
            reason="missing-header",
        )
    repeated = [name for name in (TIMESTAMP_HEADER, NONCE_HEADER) if len(values[name]) > 1]
    if repeated:
        raise SignatureRejected(f"{', '.join(repeated)} must be sent once", reason="repeated-header")
    signed = check_signature(
        secrets=secrets,
        method=method,
        path=path,
        body=body,
        key_id=key_id,
        timestamp=values[TIMESTAMP_HEADER][0],
        nonce=values[NONCE_HEADER][0],
        # Repeated signature headers mean the same as one comma-joined header (RFC 9110 §5.3).
        signature=",".join(values[SIGNATURE_HEADER]),
        now=rt.clock.now(),
        window_seconds=settings.signature_window_seconds,
    )
    nonces.spend(rt, scopes=signed.scopes, nonce=signed.nonce)
    return signed
