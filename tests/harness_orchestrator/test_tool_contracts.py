"""Orchestrator <-> tool contracts: each tool's argument schema is enforced at the boundary.

The oracle is the tool's own published JSON schema (what the model is shown): hypothesis
generates valid and invalid arguments, and ``check_args`` must accept exactly what the schema
accepts. Through the loop, a model's tool call with generated arguments becomes a tool step
that ran (valid) or answered the model an error (invalid) - never a crashed run, never a tool
executed with arguments outside its schema - and every result the model gets back is a string.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema_rs  # the JSON Schema validator schemathesis ships with (dev dependency)
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from harness.database.connect import unit_of_work
from harness.database.models import Run, Step
from harness.errors import InvalidRequest
from harness.jobs.worker import drain
from harness.providers.base import ChatRequest, ChatResponse, ToolCallRequest
from harness.tools.registry import TOOLS, check_args

pytestmark = [pytest.mark.tier1]

_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
_value = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=5), inner, max_size=2),
    max_leaves=4,
)


def _arguments(tool: str) -> st.SearchStrategy[Any]:
    """Mostly-plausible arguments: the tool's own keys (string or not), sometimes extras or garbage."""
    props = sorted(TOOLS[tool].parameters["properties"])
    own = st.dictionaries(st.sampled_from(props), st.text(max_size=30) | _value, max_size=len(props))
    extra = st.dictionaries(
        st.sampled_from([*props, "cmd", "PATH", "path "]), _value | st.text(max_size=8), max_size=3
    )
    return own | extra | _value


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_check_args_accepts_exactly_what_the_published_schema_accepts(tool: str) -> None:
    spec = TOOLS[tool]
    validator = jsonschema_rs.validator_for(spec.parameters)

    @settings(max_examples=300, deadline=None)
    @given(_arguments(tool))
    def check(args: Any) -> None:
        valid = validator.is_valid(args)
        try:
            accepted = check_args(spec, args)
        except InvalidRequest as exc:
            assert not valid, f"{tool} refused schema-valid {args!r}: {exc.message}"
            assert exc.message.startswith(f"{tool}:")  # the model is told which tool and why
        else:
            assert valid, f"{tool} accepted schema-invalid {args!r}"
            assert accepted == args

    check()


class ToolCaller:
    """A provider whose first answer calls ``tool`` with fixed arguments, then finishes."""

    name = "tool-caller"

    def __init__(self) -> None:
        self.tool = "read_file"
        self.arguments = "{}"

    def complete(self, request: ChatRequest) -> ChatResponse:
        if request.messages[-1]["role"] == "tool":
            return ChatResponse(content="done", tool_calls=(), finish_reason="stop")
        call = ToolCallRequest(id="call_0", name=self.tool, arguments=self.arguments)
        return ChatResponse(content=None, tool_calls=(call,), finish_reason="tool_calls")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tool=st.sampled_from(["list_files", "read_file"]), data=st.data())
def test_the_loop_enforces_the_schema_before_any_tool_runs(
    make_runtime: Any,
    sqlite_database_url: str,
    run_factory: Callable[..., str],
    tool: str,
    data: st.DataObject,
) -> None:
    args = data.draw(_arguments(tool))
    caller = ToolCaller()
    caller.tool, caller.arguments = tool, json.dumps(args)
    rt = _runtime(make_runtime, sqlite_database_url, caller)
    run_id = run_factory(rt, task="use one tool", tenant="acme")
    drain(rt)
    with unit_of_work(rt.sessions) as session:
        run = session.execute(select(Run).where(Run.id == run_id)).scalar_one()
        step = session.execute(
            select(Step).where(Step.run_id == run_id, Step.kind == "tool_call")
        ).scalar_one()
        outcome, content = step.outcome, step.output["content"]
    assert run.status == "SUCCEEDED", run.error
    valid = jsonschema_rs.validator_for(TOOLS[tool].parameters).is_valid(args)
    if not valid:
        # refused at the boundary (and audited as tool.refused), naming the argument problem
        assert outcome == "refused" and "refused:" in content and "argument" in content, (
            args,
            outcome,
            content,
        )
    else:
        assert outcome in ("ok", "error", "refused"), outcome  # a valid call may still miss a file
        if outcome != "ok":
            assert "argument" not in content, content  # not refused for its arguments
    assert isinstance(content, str)


_RUNTIMES: dict[str, Any] = {}


def _runtime(make_runtime: Any, url: str, caller: ToolCaller) -> Any:
    """One runtime per database for all examples; the provider is swapped per example."""
    from harness.accounts import create_tenant

    rt = _RUNTIMES.get(url)
    if rt is None:
        rt = make_runtime(url, providers=[caller])
        create_tenant(rt, tenant_id="acme", name="Acme")
        (rt.settings.tenant_files_dir / "acme").mkdir(parents=True, exist_ok=True)
        (rt.settings.tenant_files_dir / "acme" / "sales.csv").write_text("region,amount\nNorth,120\n")
        _RUNTIMES[url] = rt
    rt.providers[:] = [caller]
    return rt
