"""``create_app(settings)``: the HTTP face of the harness.

Main flow: ``harness.api.routes`` → ``harness.runs.service`` (create / decide / view) →
``harness.jobs.queue``; the worker (``harness.jobs.worker``) runs ``harness.orchestrator.loop``.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline

from harness import __version__
from harness.api import auth_failures, problems
from harness.api.auth_failures import AuthFailures
from harness.api.limits import BodySizeLimit, RateLimits
from harness.api.openapi_doc import document_problems
from harness.api.request_signing import NonceStore
from harness.api.routes import router
from harness.database.connect import assert_migrated
from harness.errors import NotFound, Unauthorized
from harness.observability import render_metrics, trace_requests
from harness.runtime import Runtime, build_runtime
from harness.settings import Settings


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app; refuses to start on an un-migrated database (one-line hint)."""
    rt = runtime or build_runtime(settings or Settings())
    assert_migrated(rt.engine)
    # /docs and /redoc from the installed package's assets, not a CDN: they work offline.
    app = FastAPIOffline(
        title="AI harness",
        version=__version__,
        description="Runs tasks through an LLM with tools, behind a human approval gate.",
    )
    app.state.runtime = rt
    app.state.rate_limits = RateLimits(
        per_key=rt.settings.rate_limit_per_key,
        per_tenant=rt.settings.rate_limit_per_tenant,
        clock=rt.clock,
    )
    app.state.nonce_store = NonceStore()
    app.state.auth_failures = AuthFailures(
        per_address=rt.settings.auth_failures_per_address,
        audit_per_address=rt.settings.auth_failure_audit_per_address,
    )
    problems.install(app)
    auth_failures.install(app, app.state.auth_failures)
    document_problems(app)
    app.include_router(router)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=rt.settings.max_body_bytes,
        read_timeout=rt.settings.body_read_timeout_seconds,
    )
    app.middleware("http")(trace_requests)  # api.request spans (harness.observability)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        """Prometheus metrics (tenant names, run counts): only with the separate metrics token."""
        configured = rt.settings.metrics_token
        if configured is None:
            raise NotFound("metrics are disabled; set HARNESS_METRICS_TOKEN to serve them")
        sent = request.headers.get("authorization", "")
        expected = f"Bearer {configured.get_secret_value()}"
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Unauthorized("GET /metrics needs 'Authorization: Bearer <HARNESS_METRICS_TOKEN>'")
        return Response(render_metrics(), media_type="text/plain; version=0.0.4")

    return app
