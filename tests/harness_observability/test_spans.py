"""OpenTelemetry spans API -> orchestrator -> provider -> tool -> artifact, asserted as trees.

The SDK's in-memory exporter collects what the harness emits; the tests assert the parent/child
structure of a happy path and of a failover, the tenant and run ids as attributes, and that no
exported span carries a secret, a key or the other tenant's data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from tests.support.api import World, world
from tests.support.faults import AlwaysFailingClient
from tests.support.security import QUARTERLY_TASK, secret_findings
from tests.support.tracing import span_exporter

pytestmark = [pytest.mark.tier1, pytest.mark.security]


@pytest.fixture
def spans() -> Iterator[Any]:
    exporter = span_exporter()
    exporter.clear()
    yield exporter
    exporter.clear()


@pytest.fixture
def w(make_runtime: Any, sqlite_database_url: str) -> Iterator[World]:
    with world(make_runtime, sqlite_database_url) as it:
        yield it


def _children(all_spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in all_spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def _tree(all_spans: list[ReadableSpan], root: ReadableSpan) -> list[Any]:
    return [root.name, [_tree(all_spans, c) for c in _children(all_spans, root)]]


def test_happy_path_span_tree_with_ids_and_no_secrets(w: World, spans: Any) -> None:
    run_id = w.post("run", "alice", {"task": QUARTERLY_TASK}).json()["run_id"]
    w.drain()
    w.post("approve", "bob", w.decision(run_id, "approve", "ok"))
    w.drain()
    assert w.get(f"runs/{run_id}", "alice").json()["status"] == "SUCCEEDED"
    finished = list(spans.get_finished_spans())

    api = [s for s in finished if s.name == "api.request"]
    seen = {
        (s.attributes["http.method"], s.attributes["http.path"], s.attributes["http.status_code"])
        for s in api
    }
    assert ("POST", "/api/harness/run", 202) in seen
    assert ("POST", "/api/harness/approve", 200) in seen
    assert ("GET", f"/api/harness/runs/{run_id}", 200) in seen
    runs = [s for s in finished if s.name == "orchestrator.run"]
    assert len(runs) == 2  # before the approval gate, and resumed after it
    for r in runs:
        assert r.parent is None  # the worker's own trace, joined to the API's by run.id
        assert dict(r.attributes or {}) == {"run.id": run_id, "tenant.id": "acme"}
    first, resumed = sorted(runs, key=lambda s: s.start_time or 0)
    first_tree = _tree(finished, first)
    assert first_tree[0] == "orchestrator.run"
    kinds = [child[0] for child in first_tree[1]]
    assert kinds[0] == "provider.call" and "tool.call" in kinds
    resumed_tree = _tree(finished, resumed)
    tools = [c for c in resumed_tree[1] if c[0] == "tool.call"]
    assert ["artifact.commit", []] in [g for t in tools for g in t[1]]
    artifact = next(s for s in finished if s.name == "artifact.commit")
    assert dict(artifact.attributes or {}) == {
        "run.id": run_id,
        "tenant.id": "acme",
        "artifact.path": "report.md",
    }
    for s in finished:
        if s.name == "provider.call":
            assert s.attributes == {"provider.name": "openai", "llm.model": "sim-small"}

    exported = "\n".join(s.to_json() for s in finished)
    assert secret_findings(exported) == []
    for key in w.keys.values():
        assert key.token not in exported and key.key_id not in exported
    assert "globex" not in exported and "Bearer" not in exported


def test_failover_span_tree_records_each_failed_attempt(
    make_runtime: Any, sqlite_database_url: str, spans: Any
) -> None:
    with world(make_runtime, sqlite_database_url) as w:
        down = AlwaysFailingClient("primary-down")
        w.rt.providers.insert(0, down)
        run_id = w.post("run", "alice", {"task": QUARTERLY_TASK}).json()["run_id"]
        w.drain()
        assert w.get(f"runs/{run_id}", "alice").json()["status"] == "AWAITING_APPROVAL"
    finished = list(spans.get_finished_spans())
    run_span = next(s for s in finished if s.name == "orchestrator.run")
    calls = [c for c in _children(finished, run_span) if c.name == "provider.call"]
    first_round = [c.attributes["provider.name"] for c in calls][: w.rt.settings.retry_max_attempts + 1]
    assert first_round == ["primary-down"] * w.rt.settings.retry_max_attempts + ["openai"]
    failed = [c for c in calls if c.attributes["provider.name"] == "primary-down"]
    assert failed and all(c.status.status_code is StatusCode.ERROR for c in failed)
    assert all(any(e.name == "exception" for e in c.events) for c in failed)
    ok = [c for c in calls if c.attributes["provider.name"] == "openai"]
    assert ok and all(c.status.status_code is not StatusCode.ERROR for c in ok)
    assert json.loads(run_span.to_json())["attributes"] == {"run.id": run_id, "tenant.id": "acme"}


def test_credential_named_attributes_are_dropped_and_values_redacted(spans: Any) -> None:
    from harness.observability import span

    secret = "sk-" + "proj-" + "Q7x" * 16
    with span("probe", **{"api_key": "x", "http.authorization": "y", "note": f"value {secret}", "n": 3}):
        pass
    (probe,) = [s for s in spans.get_finished_spans() if s.name == "probe"]
    attrs = dict(probe.attributes or {})
    assert set(attrs) == {"note", "n"} and attrs["n"] == 3
    assert secret not in attrs["note"] and "[REDACTED" in attrs["note"]
