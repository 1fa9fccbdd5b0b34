"""The provider simulator, driven through the official OpenAI SDK and raw HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

# TID251 is meant for harness/ only; pyproject lacks the per-file-ignore for tests/ (reported)
from replay.provider_sim import SimulatorHandle, start_simulator
from replay.sim_script import (
    SimScript,
    SimScriptError,
    load_script,
    parse_script,
)

DATA = Path(__file__).parent / "data"
BASIC = DATA / "sim_basic.yaml"
AUTH = {"Authorization": "Bearer sk-sim-test"}
ROOT = Path(__file__).resolve().parents[2]

tier1 = pytest.mark.tier1


@pytest.fixture
def sim() -> Iterator[SimulatorHandle]:
    with start_simulator(BASIC) as handle:
        yield handle


@pytest.fixture
def client(sim: SimulatorHandle) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=sim.base_url, api_key="sk-sim-test", max_retries=0) as c:
        yield c


@pytest.fixture
def raw(sim: SimulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, timeout=10) as c:
        yield c


def user(text: str) -> Any:  # Any: the SDK wants its TypedDicts, the raw tests plain dicts
    return [{"role": "user", "content": text}]


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


# --- answers ------------------------------------------------------------------------------


@tier1
def test_plain_answer_has_the_real_shape(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="sim-gpt-small", messages=user("hello there"), temperature=0, seed=7
    )
    completion = raw.parse()

    assert re.fullmatch(r"chatcmpl-sim-[0-9a-f]{24}", completion.id)
    assert completion.object == "chat.completion"
    assert completion.created == 1767225600
    assert completion.model == "sim-gpt-small"
    assert completion.system_fingerprint == "fp_sim"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello from the simulator."
    assert choice.message.tool_calls is None
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 3  # ceil(len("hello there") / 4)
    assert completion.usage.completion_tokens == 7  # ceil(25 / 4)
    assert completion.usage.total_tokens == 10
    assert raw.headers["x-request-id"] == "req_sim_" + completion.id.removeprefix("chatcmpl-sim-")
    assert raw.headers["openai-processing-ms"] == "1"
    assert raw.headers["content-type"] == "application/json"


@tier1
def test_tool_conversation_advances_one_turn_per_assistant_message(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "You write reports."},
        {"role": "user", "content": "Write the quarterly report."},
    ]
    tools: Any = [
        {"type": "function", "function": {"name": "list_files", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "write_artifact", "description": "Write."}},
    ]
    names = []
    for _ in range(2):
        completion = client.chat.completions.create(
            model="sim-gpt-small", messages=messages, tools=tools, temperature=0
        )
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.tool_calls is not None
        call = choice.message.tool_calls[0]
        names.append(call.function.name)  # type: ignore[union-attr]
        messages.append(choice.message.model_dump(exclude_none=True))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "ok"})
    final = client.chat.completions.create(model="sim-gpt-small", messages=messages, tools=tools)

    assert names == ["list_files", "write_artifact"]
    assert json.loads(messages[4]["tool_calls"][0]["function"]["arguments"]) == {
        "path": "report.md",
        "content": "# Q3\nRevenue up.",
    }
    assert messages[2]["tool_calls"][0]["id"] == "call_sim_0_0"
    assert final.choices[0].message.content == "Done. The report is in report.md."
    assert [(r.conversation, r.turn) for r in sim.requests] == [
        ("quarterly", 0),
        ("quarterly", 1),
        ("quarterly", 2),
    ]


@tier1
def test_model_rule_selects_a_conversation(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="sim-gpt-large", messages=user("anything"))
    assert completion.choices[0].message.content == "Large model answer."


# --- streaming ----------------------------------------------------------------------------


@tier1
def test_stream_reassembles_to_the_non_streamed_answer(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="m", messages=user("hello"))
    with client.chat.completions.create(
        model="m", messages=user("hello"), stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)

    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) > 1
    assert "".join(c.choices[0].delta.content or "" for c in content_chunks) == (
        whole.choices[0].message.content
    )
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage == whole.usage


@tier1
def test_stream_tool_call_arguments_reassemble_by_index(client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model="m", messages=user("what is the weather"), stream=True
    ) as stream:
        chunks = list(stream)

    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            assert delta.function is not None
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""

    assert calls == {
        0: {"id": "call_sim_0_0", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        1: {"id": "call_sim_0_1", "name": "get_weather", "arguments": '{"city":"Tokyo"}'},
    }
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage is None


@tier1
def test_stream_wire_format_is_sse_ending_in_done(raw: httpx.Client) -> None:
    body = {"model": "m", "messages": user("hello"), "stream": True}
    response = raw.post("/chat/completions", json=body, headers=AUTH)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"].startswith("req_sim_")
    events = response.text.split("\n\n")
    assert events[-1] == ""
    assert events[-2] == "data: [DONE]"
    assert all(e.startswith("data: {") for e in events[:-2])


@tier1
def test_fail_mid_stream_delivers_k_chunks_then_a_connection_error(
    client: openai.OpenAI,
) -> None:
    received = []
    with (
        pytest.raises(openai.APIConnectionError),
        client.chat.completions.create(
            model="m", messages=user("cut the stream"), stream=True
        ) as stream,
    ):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3
    assert "".join(c.choices[0].delta.content or "" for c in received) == "one two"


@tier1
def test_chunk_delay_spaces_the_chunks(client: openai.OpenAI) -> None:
    started = time.monotonic()
    with client.chat.completions.create(
        model="m", messages=user("slow stream please"), stream=True
    ) as stream:
        chunks = list(stream)
    # six chunks after the first, 20 ms apart: a lower bound only, never an upper one
    assert len(chunks) == 6
    assert time.monotonic() - started >= 0.1


# --- faults -------------------------------------------------------------------------------


@tier1
def test_fault_with_times_fails_first_then_answers(
    client: openai.OpenAI, sim: SimulatorHandle
) -> None:
    statuses = []
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="m", messages=user("a flaky call"))
        statuses.append(caught.value.status_code)
        assert caught.value.response.headers["retry-after"] == "1"
        assert caught.value.type == "server_error"
        assert "failure" in caught.value.message
    completion = client.chat.completions.create(model="m", messages=user("a flaky call"))

    assert statuses == [503, 503]
    assert completion.choices[0].message.content == "Recovered after retries."
    assert [r.status for r in sim.requests] == [503, 503, 200]

    # a different request has its own counter; reset() re-arms every fault
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="other", messages=user("a flaky call"))
    sim.reset()
    assert sim.requests == []
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=user("a flaky call"))


@tier1
def test_fault_without_times_always_fails(client: openai.OpenAI) -> None:
    for _ in range(3):
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="m", messages=user("rate limit me"))
        assert caught.value.code == "rate_limit_exceeded"
        assert "Rate limit reached" in caught.value.message


@tier1
def test_delay_ms_trips_a_client_timeout(sim: SimulatorHandle) -> None:
    with (
        openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0, timeout=0.05) as impatient,
        pytest.raises(openai.APITimeoutError),
    ):
        impatient.chat.completions.create(model="m", messages=user("take your time"))


@tier1
def test_malformed_returns_200_with_invalid_json(raw: httpx.Client) -> None:
    response = raw.post(
        "/chat/completions", json={"model": "m", "messages": user("malformed please")}, headers=AUTH
    )
    assert response.status_code == 200
    assert response.text.startswith('{"id":"chatcmpl-sim-')
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


@tier1
def test_exhausted_script_is_a_422_naming_conversation_and_turn(client: openai.OpenAI) -> None:
    messages: list[Any] = [
        *user("hi"),
        {"role": "assistant", "content": "Hello from the simulator."},
        {"role": "user", "content": "and again?"},
    ]
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(model="m", messages=messages)
    assert caught.value.type == "simulator_error"
    assert caught.value.code == "script_exhausted"
    assert "'default'" in caught.value.message
    assert "turn 1" in caught.value.message
    assert str(BASIC) in caught.value.message


@tier1
def test_no_matching_conversation_without_default_is_a_422() -> None:
    script = parse_script(
        {
            "format_version": 1,
            "conversations": [{"match": {"model": "only-this"}, "turns": [{"content": "x"}]}],
        }
    )
    with (
        start_simulator(script) as sim,
        openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0) as client,
        pytest.raises(openai.UnprocessableEntityError) as caught,
    ):
        client.chat.completions.create(model="another", messages=user("hi"))
    assert caught.value.code == "no_matching_conversation"


# --- validation and auth ------------------------------------------------------------------

GOOD: dict[str, Any] = {"model": "m", "messages": user("hi")}
ASKS_TOOL: dict[str, Any] = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
}


@tier1
@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([GOOD], "body"),
        ({"messages": user("hi")}, "model"),
        ({"model": 5, "messages": user("hi")}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({**GOOD, "temperature": "0"}, "temperature"),
        ({**GOOD, "temperature": True}, "temperature"),
        ({**GOOD, "temperature": 2.5}, "temperature"),
        ({**GOOD, "max_tokens": 1.5}, "max_tokens"),
        ({**GOOD, "stream": "yes"}, "stream"),
        ({**GOOD, "stream_options": {"include_usage": True}}, "stream_options"),
        ({**GOOD, "tools": {"type": "function"}}, "tools"),
        ({**GOOD, "tools": []}, "tools"),
        ({**GOOD, "tools": [{"type": "function"}]}, "tools[0].function"),
        ({**GOOD, "tools": [{"type": "function", "function": {"name": "a b"}}]}, None),
        ({**GOOD, "tool_choice": "auto"}, "tool_choice"),
        ({"model": "m", "messages": [*user("hi"), ASKS_TOOL]}, "messages[2]"),
        ({"model": "m", "messages": [*user("hi"), ASKS_TOOL, *user("x")]}, "messages[2].role"),
        (
            {"model": "m", "messages": [*user("hi"), ASKS_TOOL, {"role": "tool", "content": "r"}]},
            "messages[2].tool_call_id",
        ),
        (
            {
                "model": "m",
                "messages": [*user("hi"), {"role": "tool", "tool_call_id": "c1", "content": "r"}],
            },
            "messages[1].role",
        ),
    ],
)
def test_invalid_bodies_are_400_in_the_openai_shape(
    raw: httpx.Client, body: Any, param: str | None
) -> None:
    response = raw.post("/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    else:
        assert error["param"].startswith("tools[0].function")


@tier1
@pytest.mark.parametrize("content", [b"{not json", b'{"model": NaN}', b"\xff\xfe", b""])
def test_unparseable_bodies_are_400(raw: httpx.Client, content: bytes) -> None:
    response = raw.post(
        "/chat/completions", content=content, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "could not parse the JSON body" in error_of(response)["message"]


@tier1
def test_sdk_surfaces_validation_as_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=user("hi"), temperature=3)
    assert caught.value.param == "temperature"
    assert caught.value.code == "invalid_value"


@tier1
def test_unknown_fields_and_full_tool_round_trip_are_accepted(raw: httpx.Client) -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "be brief"}]},
            *user("hi"),
            ASKS_TOOL,
            {"role": "tool", "tool_call_id": "c1", "content": "r"},
        ],
        "reasoning_effort": "low",
        "some_future_field": {"x": 1},
        "temperature": None,
    }
    script = {"format_version": 1, "default": {"turns": [{"content": "a"}, {"content": "b"}]}}
    with start_simulator(parse_script(script)) as sim:
        response = httpx.post(sim.base_url + "/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "b"


@tier1
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": ""},
    ],
)
def test_missing_or_blank_bearer_key_is_401(raw: httpx.Client, headers: dict[str, str]) -> None:
    response = raw.post("/chat/completions", json=GOOD, headers=headers)
    assert response.status_code == 401
    assert "API key" in error_of(response)["message"]


@tier1
def test_unknown_path_is_404_and_wrong_method_405(raw: httpx.Client) -> None:
    missing = raw.post("/embeddings", json=GOOD, headers=AUTH)
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "unknown_url"
    wrong_method = raw.get("/chat/completions", headers=AUTH)
    assert wrong_method.status_code == 405
    error_of(wrong_method)


@tier1
def test_request_log_drops_credentials(raw: httpx.Client, sim: SimulatorHandle) -> None:
    raw.post("/chat/completions", json=GOOD, headers={**AUTH, "x-api-key": "sk-secret"})
    (record,) = sim.requests
    assert record.path == "/v1/chat/completions"
    assert record.body == GOOD
    assert "authorization" not in record.headers
    assert "x-api-key" not in record.headers
    assert record.headers["content-type"] == "application/json"


# --- determinism and concurrency ----------------------------------------------------------


@tier1
def test_same_request_gives_byte_identical_bodies_across_servers(raw: httpx.Client) -> None:
    body = {"model": "m", "messages": user("hello"), "temperature": 0, "seed": 7}
    first = raw.post("/chat/completions", json=body, headers=AUTH)
    second = raw.post("/chat/completions", json=body, headers=AUTH)
    with start_simulator(BASIC) as other:
        third = httpx.post(other.base_url + "/chat/completions", json=body, headers=AUTH)
    # key order does not change the canonical digest
    reordered = raw.post(
        "/chat/completions", content=json.dumps(dict(reversed(body.items()))), headers=AUTH
    )

    assert first.content == second.content == third.content == reordered.content
    assert dict(first.headers) == dict(third.headers)  # no Date header: whole responses repeat
    assert "date" not in first.headers


@tier1
def test_concurrent_conversations_do_not_interfere(sim: SimulatorHandle) -> None:
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def converse(worker: int) -> None:
        try:
            with openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0) as client:
                topic = "quarterly report" if worker % 2 else "weather"
                messages: list[Any] = user(f"worker {worker}: {topic}")
                seen = []
                while True:
                    message = client.chat.completions.create(model="m", messages=messages)
                    reply = message.choices[0].message
                    if not reply.tool_calls:
                        seen.append(reply.content or "")
                        break
                    seen.extend(c.function.name for c in reply.tool_calls)  # type: ignore[union-attr]
                    messages.append(reply.model_dump(exclude_none=True))
                    messages.extend(
                        {"role": "tool", "tool_call_id": c.id, "content": "ok"}
                        for c in reply.tool_calls
                    )
                results[worker] = seen
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=converse, args=(w,)) for w in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    for worker, seen in results.items():
        if worker % 2:
            assert seen == ["list_files", "write_artifact", "Done. The report is in report.md."]
        else:
            assert seen == ["get_weather", "get_weather", "Paris is mild and Tokyo is rainy."]
    assert len(results) == 12


# --- the CLI ------------------------------------------------------------------------------


@tier1
@pytest.mark.e2e
def test_cli_prints_its_url_answers_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "replay.provider_sim", "--script", str(BASIC), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"provider-sim listening on (http://127\.0\.0\.1:\d+/v1)\n", line)
        assert match, line
        with openai.OpenAI(base_url=match.group(1), api_key="k", max_retries=0) as client:
            completion = client.chat.completions.create(model="m", messages=user("hi"))
        assert completion.choices[0].message.content == "Hello from the simulator."
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert stdout == ""


@tier1
@pytest.mark.e2e
def test_cli_rejects_a_bad_script_with_exit_2(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text("format_version: 1\ndefault: {turns: [{contnet: hi}]}\n")
    result = subprocess.run(
        [sys.executable, "-m", "replay.provider_sim", "--script", str(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{script}: default.turns[0].contnet" in result.stderr


# --- the script file ----------------------------------------------------------------------


@pytest.mark.tier0
def test_example_script_loads() -> None:
    script = load_script(BASIC)
    assert isinstance(script, SimScript)
    assert script.source == str(BASIC)
    assert script.conversation_label(0) == "quarterly"
    assert script.conversation_label(None) == "default"


@pytest.mark.tier0
def test_json_scripts_load_too(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"format_version": 1, "default": {"turns": [{"content": "x"}]}}))
    assert load_script(path).default is not None


@pytest.mark.tier0
@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("default: {turns: [{content: x}]}", "format_version", "missing"),
        ("format_version: 2\ndefault: {turns: [{content: x}]}", "format_version", "rewrite"),
        (
            "format_version: 1\ndefault: {turns: [{contnet: x}]}",
            "default.turns[0].contnet",
            "Extra",
        ),
        (
            "format_version: 1\nconversations: [{match: {model: m}, turns: [{content: x, "
            "fault: {status: 200}}]}]",
            "conversations[0].turns[0].fault.status",
            "greater than or equal to 400",
        ),
        ("format_version: 1\ndefault: {turns: [{}]}", "default.turns[0]", "needs `content`"),
        ("format_version: 1\ndefault: {turns: []}", "default.turns", "at least 1"),
        (
            "format_version: 1\nconversations: [{match: {}, turns: [{content: x}]}]",
            "conversations[0].match",
            "catch-all",
        ),
        ("format_version: 1", "(top level)", "needs `conversations`"),
        ("- 1\n- 2", "(top level)", "mapping"),
        ("format_version: 1\ndefault: {turns: [", "(syntax)", "expected"),
    ],
)
def test_script_errors_name_the_file_and_field(
    tmp_path: Path, text: str, field: str, words: str
) -> None:
    path = tmp_path / "script.yaml"
    path.write_text(text)
    with pytest.raises(SimScriptError) as caught:
        load_script(path)
    assert f"{path}: {field}: " in str(caught.value)
    assert words in str(caught.value)
    assert caught.value.source == str(path)


@pytest.mark.tier0
def test_missing_script_file_is_a_script_error(tmp_path: Path) -> None:
    with pytest.raises(SimScriptError, match="cannot read"):
        start_simulator(tmp_path / "nope.yaml")
