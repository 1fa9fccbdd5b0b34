"""Idempotency-Key semantics (IETF httpapi draft), scoped per principal (tenant + person/service).

A key belongs to whoever sent it: another principal of the same tenant reusing the same key
string gets its own claim, never the first principal's stored response (or run id).

Claim the key in its own short transaction (``in_flight``); do the work; store the response.
Same key + same canonical body → the stored response, marked ``Idempotent-Replayed: true``.
Same key + another body → 422. Same key while the first is still in flight → 409.
Failures are not stored: the claim is released so the client can fix and retry.
Expired keys count as never seen; every ``PRUNE_EVERY``-th claim also deletes all expired keys.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from harness.clock import iso
from harness.database.connect import unit_of_work
from harness.database.models import IdempotencyKey
from harness.errors import IdempotencyConflict, InvalidRequest
from harness.observability import get_logger
from harness.runtime import Runtime

MAX_KEY_LENGTH = 255
PRUNE_EVERY = 256

log = get_logger(__name__)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def validate_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest("Idempotency-Key must be 1-255 printable characters", field="Idempotency-Key")
    return key


@dataclass
class PruneSchedule:
    """Counts claims and says when one should also prune: deterministic, 1 in ``every``."""

    every: int = PRUNE_EVERY
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def due(self) -> bool:
        with self._lock:
            self._count += 1
            return self._count % self.every == 0


PRUNING = PruneSchedule()


def claim(
    rt: Runtime, *, tenant_id: str, principal: str, key: str, request_digest: str
) -> StoredResponse | None:
    """Claim ``key`` for this request, or return the stored response of an identical earlier one."""
    if PRUNING.due():
        _prune_quietly(rt)
    now = rt.clock.now()
    try:
        with unit_of_work(rt.sessions) as session:
            # A conditional DELETE, not load-then-delete: when two requests revive the same expired
            # key on PostgreSQL, the loser's ORM delete matched 0 rows ("expected to delete 1 row").
            session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.tenant_id == tenant_id,
                    IdempotencyKey.principal == principal,
                    IdempotencyKey.key == key,
                    IdempotencyKey.expires_at <= iso(now),
                )
            )
            existing = session.get(IdempotencyKey, (tenant_id, principal, key))
            if existing is None:
                session.add(
                    IdempotencyKey(
                        tenant_id=tenant_id,
                        principal=principal,
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
            existing = session.get(IdempotencyKey, (tenant_id, principal, key))
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


def complete(
    session: Session, *, tenant_id: str, principal: str, key: str, status: int, body: dict[str, Any]
) -> None:
    """Store the response in the caller's unit of work (the one that created the run)."""
    row = session.get_one(IdempotencyKey, (tenant_id, principal, key))
    row.state = "completed"
    row.response_status = status
    row.response_body = body


def release(rt: Runtime, *, tenant_id: str, principal: str, key: str) -> None:
    """Forget a claim whose request failed, so the failure is not replayed."""
    with unit_of_work(rt.sessions) as session:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.tenant_id == tenant_id,
                IdempotencyKey.principal == principal,
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


def _prune_quietly(rt: Runtime) -> None:
    # Opportunistic housekeeping must never fail the request that happened to trigger it.
    try:
        removed = prune(rt)
    except SQLAlchemyError as exc:
        log.warning("idempotency prune failed", error=type(exc).__name__)
        return
    if removed:
        log.info("idempotency keys pruned", removed=removed)
