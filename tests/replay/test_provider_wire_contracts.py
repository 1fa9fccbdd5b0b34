"""The simulator's wire formats against the official SDKs' own types, both providers.

Hypothesis builds scripted turns (text, tool calls with arbitrary JSON arguments); every
answer the simulator would send - a whole message, each stream event or chunk, an error
body - must validate as the SDK's pydantic type, and a stream assembled the way the harness
assembles it must equal the plain answer. The requests the harness's clients build must
validate as the SDKs' own request TypedDicts and pass the simulator's request checks.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic.types as at
import openai.types.chat as ot
import pytest
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from pydantic import TypeAdapter

from harness.providers.anthropic_client import _assemble as assemble_anthropic
from harness.providers.anthropic_client import _to_response as anthropic_response
from harness.providers.anthropic_client import to_messages_request
from harness.providers.base import ChatRequest
from harness.providers.openai_client import _assemble as assemble_openai
from harness.providers.openai_client import _to_response as openai_response
from replay._sim_wire import ApiError, Turn, fault_error, validate_chat_request
from replay.sim import anthropic_wire
from replay.sim_script import FaultSpec, TurnSpec

pytestmark = [pytest.mark.tier1]

STREAM_EVENT = TypeAdapter(at.RawMessageStreamEvent)
ANTHROPIC_REQUEST = TypeAdapter(MessageCreateParamsNonStreaming)
OPENAI_REQUEST = TypeAdapter(CompletionCreateParamsNonStreaming)

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_tool_call = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
        "arguments": st.dictionaries(st.text(min_size=1, max_size=10), _json, max_size=4),
    }
)
_turn = (
    st.tuples(st.one_of(st.none(), st.text(max_size=80)), st.lists(_tool_call, max_size=3))
    .filter(lambda pair: pair[0] is not None or bool(pair[1]))
    .map(lambda pair: TurnSpec(content=pair[0], tool_calls=pair[1]))
)

BODY = {"model": "sim-small", "messages": [{"role": "user", "content": "hello"}]}


def _turn_of(spec: TurnSpec, *, stream: bool = False) -> Turn:
    body = {**BODY, "stream": stream, "stream_options": {"include_usage": True}} if stream else BODY
    return Turn("default", 0, spec, body, "d" * 64, 1767225600)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_turn)
def test_anthropic_answers_validate_as_sdk_types_and_streams_assemble_to_the_message(spec: TurnSpec) -> None:
    turn = _turn_of(spec)
    message = at.Message.model_validate(anthropic_wire.message(turn, model="claude-3-5-haiku"))
    events = [STREAM_EVENT.validate_python(data) for _, data in anthropic_wire.events(turn, model="m")]
    names = [name for name, _ in anthropic_wire.events(turn, model="m")]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert [e.type for e in events] == names  # the SSE event name is the data's type
    assert assemble_anthropic("anthropic", events) == anthropic_response("anthropic", message)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_turn)
def test_openai_answers_validate_as_sdk_types_and_streams_assemble_to_the_completion(spec: TurnSpec) -> None:
    completion = ot.ChatCompletion.model_validate(_turn_of(spec).completion())
    chunks = [ot.ChatCompletionChunk.model_validate(c) for c in _turn_of(spec, stream=True).chunks()]
    assert assemble_openai("openai", chunks) == openai_response("openai", completion)


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503, 529])
def test_error_bodies_validate_as_the_sdk_error_types(status: int) -> None:
    turn = _turn_of(TurnSpec(content="x"))
    err = fault_error(turn, FaultSpec(status=status, retry_after=1, retry_after_ms=1500), 1)
    wrapped = at.ErrorResponse.model_validate(anthropic_wire.error_payload(err))
    expected = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}
    assert wrapped.error.type == expected.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )
    assert err.headers == {"retry-after": "1", "retry-after-ms": "1500"}
    name, data = anthropic_wire.error_event("overloaded")
    assert name == "error" and at.ErrorResponse.model_validate(data).error.type == "overloaded_error"


CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are the harness."},
    {"role": "user", "content": "Read sales.csv"},
    {
        "role": "assistant",
        "content": "Reading.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"path":"a"}'},
            },
            {"id": "call_2", "type": "function", "function": {"name": "list_files", "arguments": "{}"}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "region,amount"},
    {"role": "tool", "tool_call_id": "call_2", "content": "a\nb"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "list_files", "description": "List", "parameters": {}}},
]


def test_harness_requests_validate_as_sdk_request_types_and_pass_the_simulator() -> None:
    request = ChatRequest(model="sim-small", messages=CONVERSATION, tools=TOOLS, temperature=0, seed=7)
    messages_body = to_messages_request(request, max_tokens=1024)
    ANTHROPIC_REQUEST.validate_python(messages_body)
    anthropic_wire.validate_messages_request(json.loads(json.dumps(messages_body)))
    # both tool answers travel in one user turn, right after the assistant's tool_use blocks
    assert [m["role"] for m in messages_body["messages"]] == ["user", "assistant", "user"]
    assert [b["tool_use_id"] for b in messages_body["messages"][2]["content"]] == ["call_1", "call_2"]
    assert messages_body["system"] == "You are the harness."
    assert messages_body["tools"][1]["input_schema"] == {"type": "object", "properties": {}}

    chat_body = {"model": "sim-small", "messages": CONVERSATION, "tools": TOOLS, "temperature": 0, "seed": 7}
    OPENAI_REQUEST.validate_python(chat_body)
    validate_chat_request(chat_body)

    # the neutral view the script matcher reads is the same conversation on both wires
    neutral = anthropic_wire.neutral_body(messages_body)
    assert [m["role"] for m in neutral["messages"]] == ["system", "user", "assistant", "tool", "tool"]
    assert neutral["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"path":"a"}'


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": "x"}]},
            "first message",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                    },
                    {"role": "user", "content": "no result"},
                ],
            },
            "tool_result",
        ),
        (
            {"model": "m", "max_tokens": 5, "temperature": 3, "messages": [{"role": "user", "content": "x"}]},
            "temperature",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "tools": [{"name": "f"}],
                "messages": [{"role": "user", "content": "x"}],
            },
            "input_schema",
        ),
    ],
)
def test_the_simulator_refuses_bad_messages_requests_like_the_api(
    body: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ApiError) as caught:
        anthropic_wire.validate_messages_request(body)
    assert caught.value.status == 400
    assert fragment in str(caught.value)
