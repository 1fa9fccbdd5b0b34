"""RFC 9457 problem details: every error leaves the API as ``application/problem+json``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from harness.errors import HarnessError
from harness.observability import get_logger, record_refusal
from harness.redaction import redact, redact_data

PROBLEM_TYPE_BASE = "https://harness.local/problems/"
MEDIA_TYPE = "application/problem+json"
log = get_logger(__name__)


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": redact(detail),
        **redact_data(extra),
    }
    if instance:
        body["instance"] = instance
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    502: "Bad gateway",
    503: "Service unavailable",
}

# Details we pass through to clients; anything else in HarnessError.details stays server-side.
_PUBLIC_DETAILS = ("field", "current", "target", "reason", "retry_after")


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(HarnessError)
    async def _harness(request: Request, exc: HarnessError) -> JSONResponse:
        reason = exc.details.get("reason") or exc.details.get("cause")
        record_refusal(
            status=exc.status, code=exc.code, reason=str(reason) if reason else None, path=request.url.path
        )
        extra = {k: exc.details[k] for k in _PUBLIC_DETAILS if k in exc.details}
        headers = {"Retry-After": str(exc.details["retry_after"])} if "retry_after" in exc.details else None
        if exc.status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="harness"'}
        return problem(
            exc.status,
            exc.code,
            _TITLES.get(exc.status, "Error"),
            exc.message,
            instance=request.url.path,
            headers=headers,
            **extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(
                400,
                "malformed-json",
                "Bad request",
                "the request body is not valid JSON",
                instance=request.url.path,
                errors=errors,
            )
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        where = ".".join(p for p in first["loc"] if p != "body") or "body"
        return problem(
            422,
            "validation-error",
            "Unprocessable content",
            f"{where}: {first['msg']}",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem(
            exc.status_code,
            code,
            _TITLES.get(exc.status_code, "Error"),
            str(exc.detail),
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", path=request.url.path, error=type(exc).__name__, exc_info=exc)
        return problem(
            500,
            "internal-error",
            "Internal server error",
            "an unexpected error occurred; it has been logged",
            instance=request.url.path,
        )
