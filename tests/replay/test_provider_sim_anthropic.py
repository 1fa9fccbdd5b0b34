"""The simulator's Anthropic Messages route over raw HTTP: auth, errors, SSE framing, stream faults."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from replay.provider_sim import SimulatorHandle, start_simulator
from replay.sim_script import SimScriptError, parse_script

pytestmark = [pytest.mark.tier1]

HEADERS = {"x-api-key": "sk-sim-test", "anthropic-version": "2023-06-01"}
SCRIPT = parse_script(
    {
        "format_version": 1,
        "conversations": [
            {
                "name": "cut",
                "match": {"user_contains": "cut"},
                "turns": [{"content": "one two three four", "fault": {"kind": "stream_cut", "after": 3}}],
            },
            {
                "name": "error",
                "match": {"user_contains": "error event"},
                "turns": [{"content": "one two", "fault": {"kind": "error_event", "after": 1}}],
            },
            {
                "name": "overloaded",
                "match": {"user_contains": "overloaded"},
                "turns": [{"content": "fine", "fault": {"status": 529, "times": 1, "retry_after_ms": 700}}],
            },
        ],
        "default": {"turns": [{"content": "Hello there.", "tool_calls": [{"name": "list_files"}]}]},
    }
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with start_simulator(SCRIPT) as handle:
        yield handle


@pytest.fixture
def raw(sim: SimulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.origin, timeout=10) as client:
        yield client


def body(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-3-5-haiku",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def events(response: httpx.Response) -> list[str]:
    return [line.removeprefix("event: ") for line in response.text.splitlines() if line.startswith("event: ")]


def test_a_plain_answer_has_text_and_tool_use_blocks(raw: httpx.Client) -> None:
    response = raw.post("/v1/messages", json=body("hi"), headers=HEADERS)
    assert response.status_code == 200
    message = response.json()
    assert [b["type"] for b in message["content"]] == ["text", "tool_use"]
    assert message["stop_reason"] == "tool_use" and message["content"][1]["input"] == {}


def test_a_streamed_answer_is_named_sse_from_message_start_to_message_stop(raw: httpx.Client) -> None:
    response = raw.post("/v1/messages", json=body("hi", stream=True), headers=HEADERS)
    assert response.headers["content-type"].startswith("text/event-stream")
    names = events(response)
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert "content_block_delta" in names and "[DONE]" not in response.text


def test_auth_and_version_are_required_and_errors_use_the_anthropic_envelope(raw: httpx.Client) -> None:
    no_key = raw.post("/v1/messages", json=body("hi"), headers={"anthropic-version": "2023-06-01"})
    assert no_key.status_code == 401
    assert no_key.json()["type"] == "error" and no_key.json()["error"]["type"] == "authentication_error"
    no_version = raw.post("/v1/messages", json=body("hi"), headers={"x-api-key": "k"})
    assert no_version.status_code == 400 and "anthropic-version" in no_version.json()["error"]["message"]
    bad = raw.post("/v1/messages", json={"model": "m", "messages": []}, headers=HEADERS)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_529_overloaded_with_retry_after_ms_then_the_answer(raw: httpx.Client, sim: SimulatorHandle) -> None:
    sim.reset()
    first = raw.post("/v1/messages", json=body("overloaded"), headers=HEADERS)
    assert first.status_code == 529 and first.headers["retry-after-ms"] == "700"
    assert first.json()["error"]["type"] == "overloaded_error"
    assert raw.post("/v1/messages", json=body("overloaded"), headers=HEADERS).status_code == 200


def test_stream_cut_ends_cleanly_without_message_stop(raw: httpx.Client) -> None:
    response = raw.post("/v1/messages", json=body("cut", stream=True), headers=HEADERS)
    assert response.status_code == 200
    assert events(response) == ["message_start", "content_block_start", "content_block_delta"]


def test_error_event_mid_stream(raw: httpx.Client) -> None:
    response = raw.post("/v1/messages", json=body("error event", stream=True), headers=HEADERS)
    assert events(response) == ["message_start", "error"]
    assert '"type":"overloaded_error"' in response.text


def test_a_stream_fault_on_a_plain_request_is_a_loud_422(raw: httpx.Client) -> None:
    response = raw.post("/v1/messages", json=body("cut"), headers=HEADERS)
    assert response.status_code == 422 and "needs a streamed request" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("fault", "fragment"),
    [
        ({"kind": "status"}, "needs `status`"),
        ({"kind": "stall", "status": 503}, "applies to kind `status` only"),
    ],
)
def test_fault_specs_are_checked(fault: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SimScriptError, match=fragment):
        parse_script({"format_version": 1, "default": {"turns": [{"content": "x", "fault": fault}]}})
