"""The API against its own OpenAPI document (schemathesis), on SQLite and PostgreSQL.

Every generated request - valid and invalid bodies, odd path parameters, with a submitter's
key - must get a documented status, never a 5xx, an error as ``application/problem+json``
matching the documented Problem schema, and a success matching its response schema. The
example budget is small so the PR gate stays fast; the nightly tier runs the same checks
with a larger budget by setting ``HARNESS_CONTRACT_EXAMPLES``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import schemathesis.checks as checks
from hypothesis import HealthCheck, given, settings

from harness.accounts import create_tenant, issue_key
from harness.app import create_app
from harness.providers.base import ChatRequest, ChatResponse

pytestmark = [pytest.mark.tier1]

EXAMPLES = int(os.environ.get("HARNESS_CONTRACT_EXAMPLES", "15"))


class Quiet:
    """A provider that answers at once (the API contract, not the model, is under test)."""

    name = "quiet"

    def complete(self, request: ChatRequest) -> ChatResponse:
        return ChatResponse(content="ok", tool_calls=(), finish_reason="stop")


@pytest.fixture
def api(make_runtime: Any, database_url: str) -> Iterator[tuple[Any, str]]:
    rt = make_runtime(
        database_url,
        providers=[Quiet()],
        rate_limit_per_key="100000/minute",
        rate_limit_per_tenant="100000/minute",
    )
    create_tenant(rt, tenant_id="acme", name="Acme")
    token = issue_key(rt, tenant_id="acme", name="alice", roles=["submitter", "approver"]).token
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime=rt)), token


def _check(case: Any, token: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    # no 5xx, documented status, content type and headers, schema match. Not "positive data is
    # accepted": a schema-valid request may rightly be refused by state (an Idempotency-Key
    # reused with another body is 422, a model outside the tenant's allowlist 403).
    case.validate_response(response, excluded_checks=[checks.positive_data_acceptance])
    if response.status_code >= 400:
        content_type = response.headers["content-type"]  # schemathesis keeps each header as a list
        assert [v.split(";")[0] for v in content_type] == ["application/problem+json"], response.text
        body = response.json()
        assert body["status"] == response.status_code and body["detail"], body


def test_api_honours_its_openapi_document(api: tuple[Any, str]) -> None:
    schema, token = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def check(case: Any) -> None:
            _check(case, token)

        check()


def test_the_document_lists_problem_answers_on_every_operation(api: tuple[Any, str]) -> None:
    document = api[0].raw_schema
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "401", "403", "404", "422", "429"):
                content = operation["responses"][status]["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)
