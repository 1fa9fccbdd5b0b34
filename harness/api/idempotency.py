"""Idempotency-Key semantics (IETF httpapi draft), scoped per tenant.

Claim the key in its own short transaction (``in_flight``); do the work; store the response.
Same key + same canonical body → the stored response, marked ``Idempotent-Replayed: true``.
Same key + another body → 422. Same key while the first is still in flight → 409.
Failures are not stored: the claim is released so the client can fix and retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from harness.clock import iso
from harness.database.connect import unit_of_work
from harness.database.models import IdempotencyKey
from harness.errors import IdempotencyConflict, InvalidRequest
from harness.runtime import Runtime

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def validate_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest("Idempotency-Key must be 1-255 printable characters", field="Idempotency-Key")
    return key


def claim(rt: Runtime, *, tenant_id: str, key: str, request_digest: str) -> StoredResponse | None:
    """Claim ``key`` for this request, or return the stored response of an identical earlier one."""
    now = rt.clock.now()
    try:
        with unit_of_work(rt.sessions) as session:
            existing = session.get(IdempotencyKey, (tenant_id, key))
            if existing is not None and existing.expires_at <= iso(now):
                session.delete(existing)
                session.flush()
                existing = None
            if existing is None:
                session.add(
                    IdempotencyKey(
                        tenant_id=tenant_id,
                        key=key,
                        request_digest=request_digest,
                        state="in_flight",
                        created_at=iso(now),
                        expires_at=iso(now + timedelta(seconds=rt.settings.idempotency_ttl_seconds)),
                    )
                )
                session.flush()
                return None
            return _resolve(existing, request_digest)
    except IntegrityError:
        # Lost the insert race (PostgreSQL): the winner's row is committed now; judge against it.
        with unit_of_work(rt.sessions) as session:
            existing = session.get(IdempotencyKey, (tenant_id, key))
            if existing is None:
                raise IdempotencyConflict(
                    "a request with this Idempotency-Key is in flight; retry later"
                ) from None
            return _resolve(existing, request_digest)


def _resolve(existing: IdempotencyKey, request_digest: str) -> StoredResponse:
    if existing.request_digest != request_digest:
        raise InvalidRequest(
            "this Idempotency-Key was already used with a different request body", field="Idempotency-Key"
        )
    if existing.state != "completed" or existing.response_status is None:
        raise IdempotencyConflict("a request with this Idempotency-Key is still in flight; retry later")
    return StoredResponse(existing.response_status, dict(existing.response_body or {}))


def complete(session: Session, *, tenant_id: str, key: str, status: int, body: dict[str, Any]) -> None:
    """Store the response in the caller's unit of work (the one that created the run)."""
    row = session.get_one(IdempotencyKey, (tenant_id, key))
    row.state = "completed"
    row.response_status = status
    row.response_body = body


def release(rt: Runtime, *, tenant_id: str, key: str) -> None:
    """Forget a claim whose request failed, so the failure is not replayed."""
    with unit_of_work(rt.sessions) as session:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.tenant_id == tenant_id,
                IdempotencyKey.key == key,
                IdempotencyKey.state == "in_flight",
            )
        )


def prune(rt: Runtime) -> int:
    """Delete expired keys; returns how many."""
    with unit_of_work(rt.sessions) as session:
        result = session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at <= iso(rt.clock.now()))
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
