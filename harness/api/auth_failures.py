"""Failed authentication: limited per client address, and every 401/403 audited (rate-limited).

A client address with more than ``auth_failures_per_address`` refused requests (401) in the
window gets 429 before its credentials are even looked at, valid or not, until the window
moves on: guessing keys or signatures costs time. Each 401 and 403 is appended to the audit log as
``auth.refused`` / ``access.denied`` (path, code, reason, address; never a credential, and the
payload passes the redactor), at most ``auth_failure_audit_per_address`` entries per address and
window, so a flood cannot grow the log without bound; the drops are counted in the logs.

The client address is ``request.client.host``: behind a reverse proxy, run uvicorn with
``--proxy-headers --forwarded-allow-ips=<proxy>`` so it is the real client (README, "Behind a proxy").
"""

from __future__ import annotations

import inspect
import math
import time
from typing import Any

from fastapi import FastAPI, Request, Response
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool

from harness.audit import append_audit
from harness.database.connect import unit_of_work
from harness.errors import Forbidden, HarnessError, PolicyViolation, Unauthorized
from harness.observability import get_logger
from harness.runtime import Runtime

log = get_logger(__name__)
ANONYMOUS_TENANT = "-"


class TooManyFailures(HarnessError):
    code = "too-many-failed-authentications"
    status = 429


class AuthFailures:
    """In-memory moving windows per client address: failures (to refuse) and audits (to cap)."""

    def __init__(self, *, per_address: str, audit_per_address: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._failures: RateLimitItem = parse(per_address)
        self._audits: RateLimitItem = parse(audit_per_address)

    def check(self, address: str) -> None:
        """Refuse (429) an address that already failed too often in the window."""
        scope = f"auth-fail:{address}"
        if not self._limiter.test(self._failures, scope):
            reset = self._limiter.get_window_stats(self._failures, scope).reset_time
            retry_after = max(1, math.ceil(reset - time.time()))
            raise TooManyFailures(
                f"too many failed authentications from this address ({self._failures}); retry in"
                f" {retry_after}s with valid credentials",
                retry_after=retry_after,
            )

    def record(
        self,
        rt: Runtime,
        *,
        address: str,
        status: int,
        code: str,
        reason: str | None,
        method: str,
        path: str,
        actor: str | None,
        tenant: str | None,
    ) -> bool:
        """Count a 401 against the address; audit the refusal unless the audit cap is reached.

        Returns whether an audit entry was written.
        """
        if status == 401:
            self._limiter.hit(self._failures, f"auth-fail:{address}")
        if not self._limiter.hit(self._audits, f"auth-audit:{address}"):
            log.warning("refusal not audited: audit cap reached", address=address, status=status)
            return False
        payload: dict[str, Any] = {"status": status, "code": code, "method": method, "client": address}
        if reason is not None:
            payload["reason"] = reason
        with unit_of_work(rt.sessions) as session:
            append_audit(
                session,
                rt,
                actor=actor or "anonymous",
                tenant=tenant or ANONYMOUS_TENANT,
                action="auth.refused" if status == 401 else "access.denied",
                target=path[:200],
                payload=payload,
            )
        return True


def client_address(request: Request) -> str:
    """The peer address as the ASGI server reports it (see the module docstring about proxies)."""
    return request.client.host if request.client is not None else "unknown"


def install(app: FastAPI, failures: AuthFailures) -> None:
    """Audit every 401/403 problem: wraps the HarnessError handler ``problems.install`` added."""
    base = app.exception_handlers[HarnessError]

    async def audited(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HarnessError)
        if exc.status in (401, 403):
            who = getattr(request.state, "principal", None)
            reason = exc.details.get("reason", exc.details.get("cause"))
            await run_in_threadpool(
                lambda: failures.record(
                    request.app.state.runtime,
                    address=client_address(request),
                    status=exc.status,
                    code=exc.code,
                    reason=str(reason) if reason is not None else None,
                    method=request.method,
                    path=request.url.path,
                    actor=getattr(who, "key_id", None),
                    tenant=getattr(who, "tenant_id", None),
                )
            )
        response = base(request, exc)
        return await response if inspect.isawaitable(response) else response

    for kind in (Unauthorized, Forbidden, PolicyViolation):
        app.add_exception_handler(kind, audited)
