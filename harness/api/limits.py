"""Request guards in front of the routes: body-size cap (413), body read timeout (408) and rate
limits (429 + Retry-After)."""

from __future__ import annotations

import asyncio
import math
import threading
from collections import defaultdict, deque

from limits import RateLimitItem, parse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.api.problems import problem
from harness.clock import Clock, SystemClock
from harness.errors import HarnessError


class TooManyRequests(HarnessError):
    code = "rate-limited"
    status = 429


class RateLimits:
    """Moving-window limits per API key and per tenant, in memory, timed by the clock seam.

    The limit strings are parsed by the ``limits`` library; the window itself is kept here
    because that library reads ``time.time()`` directly, which record/replay cannot pin
    (a Retry-After from the real wall clock would differ on every replay).
    """

    def __init__(self, *, per_key: str, per_tenant: str, clock: Clock | None = None) -> None:
        self._per_key: RateLimitItem = parse(per_key)
        self._per_tenant: RateLimitItem = parse(per_tenant)
        self._clock: Clock = clock or SystemClock()
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _hit(self, item: RateLimitItem, scope: str) -> float | None:
        """Count one hit in ``scope``; None when allowed, else seconds until a slot frees up."""
        now = self._clock.now().timestamp()
        window = float(item.get_expiry())
        with self._lock:
            hits = self._hits[scope]
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= item.amount:
                return hits[0] + window - now
            hits.append(now)
            return None

    def check(self, *, key_id: str, tenant_id: str) -> None:
        for item, scope in ((self._per_key, f"key:{key_id}"), (self._per_tenant, f"tenant:{tenant_id}")):
            wait = self._hit(item, scope)
            if wait is not None:
                retry_after = max(1, math.ceil(wait))
                raise TooManyRequests(
                    f"rate limit {item} exceeded for {scope.split(':')[0]}; retry in {retry_after}s",
                    retry_after=retry_after,
                )


class BodySizeLimit:
    """Pure ASGI middleware: refuse bodies over ``max_bytes`` before they are parsed (413), and
    bodies that do not arrive in full within ``read_timeout`` seconds (408: a stalled or
    trickled upload must not hold a worker thread)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, read_timeout: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        # Buffer the whole (capped) body under one deadline, then replay it to the app.
        buffered: list[Message] = []
        received = 0
        deadline = asyncio.get_running_loop().time() + self.read_timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(remaining, 0.0))
            except TimeoutError:
                await self._timed_out(scope, receive, send)
                return
            buffered.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "payload-too-large",
            "Payload too large",
            f"request body exceeds {self.max_bytes} bytes",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)

    async def _timed_out(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            408,
            "request-timeout",
            "Request timeout",
            f"the request body did not arrive within {self.read_timeout:g}s; send it in one go and retry",
            instance=scope.get("path"),
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
