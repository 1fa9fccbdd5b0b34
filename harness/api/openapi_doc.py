"""The OpenAPI document tells the truth about errors: every operation lists its problem+json answers.

FastAPI only documents the 422 it generates itself, as ``application/json``; the service
answers every error as RFC 9457 ``application/problem+json`` (:mod:`harness.api.problems`),
including 400/401/403/404/409/413/415/429/503. This module rewrites the generated document
once so a client (or a contract test) can rely on it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from harness.api.problems import MEDIA_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}
ERROR_STATUSES = {
    "400": "Bad request (e.g. a body that is not JSON)",
    "401": "Missing, unknown or revoked API key, or a bad request signature",
    "403": "The key's roles or the tenant's routing forbid this",
    "404": "No such run or artifact in this tenant",
    "409": "The run is not in a state that allows this",
    "413": "Body larger than the configured limit",
    "415": "Body is not application/json",
    "422": "The body or a parameter failed validation",
    "429": "Rate limit reached; see Retry-After",
    "503": "A dependency (database) is unavailable; retry later",
}


def document_problems(app: FastAPI) -> None:
    """Make ``app.openapi()`` list every error status as problem+json on every operation."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = generate()
        doc.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        reference = {"$ref": "#/components/schemas/Problem"}
        for operations in doc.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, description in ERROR_STATUSES.items():
                    responses[status] = {
                        "description": description,
                        "content": {MEDIA_TYPE: {"schema": reference}},
                    }
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
