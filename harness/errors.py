"""The harness's error tree; every error the service raises on purpose is a ``HarnessError``.

    HarnessError
    ├── ConfigError               settings or environment unusable
    ├── DatabaseNotMigrated       schema missing or behind; run `harness db upgrade`
    ├── NotFound                  no such run/approval/key *for this principal*
    ├── Unauthorized              no, malformed or revoked credentials
    │   ├── SignatureRejected     request signature missing, malformed, stale or wrong (api.request_signing)
    │   └── RequestReplayed       a signed request's nonce was already spent
    ├── Forbidden                 authenticated but not allowed (role, four-eyes, policy)
    ├── Conflict
    │   ├── IllegalTransition     the run state machine refused a transition
    │   ├── StaleApproval         a decision named an action that is no longer the pending one
    │   ├── ArtifactTampered      a stored artifact no longer matches its recorded digest
    │   └── IdempotencyConflict   same key in flight / reused with another body
    ├── InvalidRequest            well-formed but semantically invalid input
    ├── PolicyViolation           a guardrail refused the action
    │   ├── ForbiddenModel        routing policy refused the model
    │   ├── ForbiddenTool         routing policy refused the tool
    │   ├── SandboxViolation      a tool path escaped (or tried to) the workspace
    │   ├── InjectionBlocked      the injection guard blocked untrusted input
    │   └── BudgetExceeded        the token budget would be exceeded
    ├── ProviderError             the model provider failed (after our retries)
    │   └── CircuitOpen           the breaker is open; no call was made
    ├── Overloaded                the queue is over its limit: 503 + Retry-After (load shed)
    ├── ArtifactError             an artifact could not be committed
    └── AuditIntegrityError       the audit log failed verification
"""

from __future__ import annotations

from typing import Any


class HarnessError(Exception):
    """Root of every deliberate harness error; ``code`` is stable for clients and problem types."""

    code = "harness-error"
    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(HarnessError):
    code = "config-error"


class DatabaseNotMigrated(HarnessError):
    code = "database-not-migrated"
    status = 503


class NotFound(HarnessError):
    code = "not-found"
    status = 404


class Unauthorized(HarnessError):
    code = "unauthorized"
    status = 401


class Forbidden(HarnessError):
    code = "forbidden"
    status = 403


class Conflict(HarnessError):
    code = "conflict"
    status = 409


class IllegalTransition(Conflict):
    code = "illegal-transition"


class StaleApproval(Conflict):
    """A decision named an approval (id, args digest) that is not the one pending now."""

    code = "approval-mismatch"


class ArtifactTampered(Conflict):
    """A committed artifact's file no longer matches its row (digest, size or location)."""

    code = "artifact-tampered"


class IdempotencyConflict(Conflict):
    code = "idempotency-conflict"


class InvalidRequest(HarnessError):
    code = "invalid-request"
    status = 422


class PolicyViolation(HarnessError):
    code = "policy-violation"
    status = 403


class ForbiddenModel(PolicyViolation):
    code = "forbidden-model"


class ForbiddenTool(PolicyViolation):
    code = "forbidden-tool"


class SandboxViolation(PolicyViolation):
    code = "sandbox-violation"


class InjectionBlocked(PolicyViolation):
    code = "injection-blocked"
    status = 422


class BudgetExceeded(PolicyViolation):
    code = "budget-exceeded"
    status = 422


class ProviderError(HarnessError):
    code = "provider-error"
    status = 502


class CircuitOpen(ProviderError):
    code = "circuit-open"
    status = 503


class Overloaded(HarnessError):
    """Load shed: the queue is deeper than its limit; ``retry_after`` seconds is the hint."""

    code = "overloaded"
    status = 503


class ArtifactError(HarnessError):
    code = "artifact-error"


class AuditIntegrityError(HarnessError):
    code = "audit-integrity"
