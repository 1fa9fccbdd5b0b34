"""``create_app(settings)``: the HTTP face of the harness.

Main flow: ``harness.api.routes`` → ``harness.runs.service`` (create / decide / view) →
``harness.jobs.queue``; the worker (``harness.jobs.worker``) runs ``harness.orchestrator.loop``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

from harness import __version__
from harness.api import problems
from harness.api.limits import BodySizeLimit, RateLimits
from harness.api.request_signing import NonceStore
from harness.api.routes import router
from harness.database.connect import assert_migrated
from harness.observability import render_metrics
from harness.runtime import Runtime, build_runtime
from harness.settings import Settings


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app; refuses to start on an un-migrated database (one-line hint)."""
    rt = runtime or build_runtime(settings or Settings())
    assert_migrated(rt.engine)
    app = FastAPI(
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
    problems.install(app)
    app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=rt.settings.max_body_bytes)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(render_metrics(), media_type="text/plain; version=0.0.4")

    return app
