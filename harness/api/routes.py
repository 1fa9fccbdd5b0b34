"""The three harness endpoints. Thin: parse, authenticate, verify the signature, call a service, shape it.

Every route under ``/api/harness`` runs the same guard chain before any side effect:
authenticate (401) and rate-limit (429) in :func:`principal`, then request signing and replay
defence (401) in :func:`signed_principal`; idempotency and the services come after.
"""

from __future__ import annotations

import contextlib
import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import SQLAlchemyError

from harness.accounts import Principal, authenticate
from harness.api import idempotency, ingress, request_signing
from harness.api.auth_failures import client_address
from harness.api.schemas import ApproveRequest, RunAccepted, RunRequest, RunView
from harness.canonical import digest
from harness.database.connect import unit_of_work
from harness.jobs import backpressure
from harness.runs import service
from harness.runs.service import RunSpec
from harness.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    rt = runtime(request)
    # An address that keeps failing is refused before its credentials are looked at (429).
    request.app.state.auth_failures.check(client_address(request))
    token = None
    if authorization and authorization.startswith("Bearer "):
        token = authorization.removeprefix("Bearer ").strip()
    with unit_of_work(rt.sessions, read_only=True) as session:
        who = authenticate(session, token)
    request.state.principal = who  # for the audit of a later 403
    request.app.state.rate_limits.check(key_id=who.key_id, tenant_id=who.tenant_id)
    return who


async def raw_body(request: Request) -> bytes:
    """The exact bytes received (already capped by the body-size middleware); cached on the request."""
    return await request.body()


def wire_path(request: Request) -> str:
    """The path as the client sent it (percent-encoded, before routing), plus ``?query`` if any."""
    raw: bytes | None = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def signed_principal(
    request: Request,
    who: Annotated[Principal, Depends(principal)],
    body: Annotated[bytes, Depends(raw_body)],
) -> Principal:
    """The authenticated caller, once the request's signature and nonce check out (when enabled)."""
    request_signing.verify_request(
        runtime(request),
        request.app.state.nonce_store,
        key_id=who.key_id,
        method=request.method,
        path=wire_path(request),
        body=body,
        headers=request.headers,
    )
    return who


Caller = Annotated[Principal, Depends(signed_principal)]

# Also a router dependency, so a route added without ``Caller`` cannot skip the check
# (FastAPI caches it per request: it runs once). Path parameters pass the ingress rule too
# (request bodies do so through their schema, harness.api.schemas.RequestBody).
router = APIRouter(
    prefix="/api/harness",
    tags=["harness"],
    dependencies=[Depends(signed_principal), Depends(ingress.admit_path_params)],
)


@router.post(
    "/run",
    status_code=202,
    response_model=RunAccepted,
    responses={409: {"description": "Idempotency-Key in flight"}},
)
def submit_run(
    body: RunRequest,
    request: Request,
    caller: Caller,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Start a run: 202 with its id; the worker picks it up."""
    rt = runtime(request)
    payload = body.model_dump(mode="json")
    key = idempotency.validate_key(idempotency_key) if idempotency_key is not None else None
    if key is not None:
        stored = idempotency.claim(
            rt,
            tenant_id=caller.tenant_id,
            principal=caller.identity,
            key=key,
            request_digest=digest(payload),
        )
        if stored is not None:
            return JSONResponse(
                stored.body, status_code=stored.status, headers={"Idempotent-Replayed": "true"}
            )
    try:
        with unit_of_work(rt.sessions) as session:
            backpressure.admit(session, rt, tenant_id=caller.tenant_id)
            run = service.create_run(session, rt, caller, RunSpec(body.task, body.model, body.tools))
            accepted = RunAccepted(
                run_id=run.id,
                status=run.status,
                model=run.model,
                tools=list(run.tools),
                links={"self": f"/api/harness/runs/{run.id}"},
            ).model_dump(mode="json")
            if key is not None:
                idempotency.complete(
                    session,
                    tenant_id=caller.tenant_id,
                    principal=caller.identity,
                    key=key,
                    status=202,
                    body=accepted,
                )
    except Exception:
        # Any failure, not only ours: a claim left in_flight would answer 409 until the TTL.
        if key is not None:
            with contextlib.suppress(SQLAlchemyError):
                idempotency.release(rt, tenant_id=caller.tenant_id, principal=caller.identity, key=key)
        raise
    return JSONResponse(accepted, status_code=202, headers={"Location": accepted["links"]["self"]})


@router.post(
    "/approve",
    response_model=dict[str, Any],
    responses={409: {"description": "The run is not awaiting approval, or waits on another action"}},
)
def approve(body: ApproveRequest, request: Request, caller: Caller) -> dict[str, Any]:
    """Apply the human gate to the action pending now (named by approval_id + args_sha256)."""
    return service.decide(
        runtime(request),
        caller,
        run_id=body.run_id,
        decision=body.decision,
        reason=body.reason,
        approval_id=body.approval_id,
        args_sha256=body.args_sha256,
    )


@router.get("/runs/{run_id}", response_model=RunView)
def get_run(run_id: str, request: Request, caller: Caller) -> dict[str, Any]:
    """Status, transitions, steps, pending approval and artifacts of one of your tenant's runs."""
    rt = runtime(request)
    with unit_of_work(rt.sessions, read_only=True) as session:
        run = service.load_run(session, caller, run_id)
        service.authorize(
            caller, "run:read", f"tenant/{run.tenant_id}/runs/{run.id}", policy=rt.policy
        )
        return service.run_view(session, run)


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    response_class=PlainTextResponse,
    responses={409: {"description": "The stored artifact no longer matches its recorded digest"}},
)
def get_artifact(run_id: str, path: str, request: Request, caller: Caller) -> PlainTextResponse:
    """The bytes of one committed artifact, after checking they still match the recorded digest."""
    rt = runtime(request)
    with unit_of_work(rt.sessions, read_only=True) as session:
        run = service.load_run(session, caller, run_id)
        service.authorize(
            caller, "run:read", f"tenant/{run.tenant_id}/runs/{run.id}", policy=rt.policy
        )
        content = service.artifact_content(session, rt, run, path)
    return PlainTextResponse(
        content,
        media_type="text/plain; charset=utf-8",
        headers={
            # Never let a browser sniff model-written text into HTML or script, or render it inline.
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": content_disposition(path),
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


def content_disposition(path: str) -> str:
    """``attachment`` with the artifact's base name: an ASCII-safe ``filename`` and RFC 5987
    ``filename*``, so no quote, semicolon, CR/LF or path in a name can break out of the header."""
    name = path.rsplit("/", 1)[-1] or "artifact"
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "artifact"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
