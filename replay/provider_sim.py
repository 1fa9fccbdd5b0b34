"""A loopback HTTP server speaking OpenAI Chat Completions, answering from a script.

Test infrastructure only (the harness never imports it): recording cassettes, and faults
a cassette cannot hold (status errors, delays, malformed bodies, streams cut mid-way).

``POST /v1/chat/completions`` answers are a pure function of the request and the script
(:mod:`replay.sim_script`): the conversation is the first rule whose ``match`` holds, the
turn is the number of assistant messages already in ``messages``. Statuses:

* 200 a completion (JSON, or ``text/event-stream`` when ``"stream": true``)
* 400 ``invalid_request_error``: body not JSON, or a known field missing or mistyped
* 401 no or blank ``Authorization: Bearer`` key (any non-empty key is accepted)
* 404 unknown path, 405 wrong method, 411 no Content-Length, 413 body over 16 MiB
* 422 ``simulator_error``: the script does not cover the request (``code`` is
  ``no_matching_conversation`` or ``script_exhausted``); 422 so SDKs never retry it
* a turn's ``fault.status``: injected, the first ``fault.times`` times that exact request
  is made (always when ``times`` is omitted); :meth:`SimulatorHandle.reset` re-arms faults

Per-turn timing and stream faults: ``delay_ms`` waits before any answer, ``chunk_delay_ms``
spaces stream chunks, ``fail_mid_stream_after: K`` sends K chunk events then drops the
connection (no ``[DONE]``), ``malformed`` answers 200 with the body (or the first stream
event) cut in half. No ``Date`` header and no wall clock: equal requests get equal bytes.

Run it alone with ``python -m replay.provider_sim --script FILE [--host H] [--port P]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import re
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, cast

from harness.canonical import digest as jcs_digest

# TID251 is meant for harness/ only; pyproject lacks the per-file-ignore for replay/ (reported)
from replay.sim_script import (
    FaultSpec,
    SimScript,
    SimScriptError,
    TurnSpec,
    load_script,
)

MAX_BODY_BYTES = 16 * 1024 * 1024
_CHAT_PATH = "/v1/chat/completions"
_ROLES = ("system", "user", "assistant", "tool", "developer")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_HIDDEN_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "cookie"})
_ARGUMENT_PIECE_CHARS = 16


@dataclass(frozen=True)
class RecordedRequest:
    """One request the simulator received, credentials removed, and what it answered."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any  # the parsed JSON body, or None when it was not JSON
    status: int
    conversation: str | None = None
    turn: int | None = None


class _ApiError(Exception):
    """An error answer in the OpenAI shape; raised to short-circuit request handling."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.payload = {"error": {"message": message, "type": type, "param": param, "code": code}}
        self.headers = dict(headers or {})


# --- request validation -------------------------------------------------------------------


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _wrong_type(param: str, expected: str, value: object) -> _ApiError:
    message = f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead."
    return _ApiError(400, message, param=param, code="invalid_type")


def _missing(param: str) -> _ApiError:
    return _ApiError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_NUMBER_RANGES = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
_INTEGER_MINIMA = {
    "max_tokens": 1,
    "max_completion_tokens": 1,
    "n": 1,
    "seed": None,
    "top_logprobs": 0,
}
_SIMPLE_TYPES: dict[str, tuple[type, str]] = {
    "stream": (bool, "a boolean"),
    "logprobs": (bool, "a boolean"),
    "parallel_tool_calls": (bool, "a boolean"),
    "store": (bool, "a boolean"),
    "user": (str, "a string"),
    "stream_options": (dict, "an object"),
    "response_format": (dict, "an object"),
    "metadata": (dict, "an object"),
    "logit_bias": (dict, "an object"),
}


def _check_scalars(body: Mapping[str, Any]) -> None:
    for name, (low, high) in _NUMBER_RANGES.items():
        value = body.get(name)
        if value is None:
            continue
        if not _is_number(value):
            raise _wrong_type(name, "a decimal", value)
        if not low <= value <= high:
            message = f"Invalid '{name}': expected a value in [{low:g}, {high:g}], but got {value}."
            raise _ApiError(400, message, param=name, code="invalid_value")
    for name, minimum in _INTEGER_MINIMA.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong_type(name, "an integer", value)
        if minimum is not None and value < minimum:
            message = f"Invalid '{name}': expected a value >= {minimum}, but got {value}."
            raise _ApiError(400, message, param=name, code="integer_below_min_value")
    for name, (python_type, expected) in _SIMPLE_TYPES.items():
        value = body.get(name)
        if value is not None and (
            not isinstance(value, python_type)
            or (python_type is not bool and isinstance(value, bool))
        ):
            raise _wrong_type(name, expected, value)
    if body.get("n") not in (None, 1):
        raise _ApiError(
            400, "The provider simulator answers n=1 only.", param="n", code="invalid_value"
        )


def _check_stop_and_stream_options(body: Mapping[str, Any]) -> None:
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str | list):
        raise _wrong_type("stop", "a string or an array of strings", stop)
    if isinstance(stop, list) and not all(isinstance(s, str) for s in stop):
        raise _wrong_type("stop", "a string or an array of strings", stop)
    options = body.get("stream_options")
    if options is not None and not body.get("stream"):
        message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        raise _ApiError(400, message, param="stream_options", code="invalid_value")
    if isinstance(options, dict) and not isinstance(options.get("include_usage", False), bool):
        raise _wrong_type("stream_options.include_usage", "a boolean", options["include_usage"])


def _check_tools(body: Mapping[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _wrong_type("tools", "an array", tools)
        if not tools:
            message = "Invalid 'tools': empty array. Expected an array with minimum length 1."
            raise _ApiError(400, message, param="tools", code="empty_array")
        for i, tool in enumerate(tools):
            _check_tool(f"tools[{i}]", tool)
    choice = body.get("tool_choice")
    if choice is None:
        return
    if not tools:
        message = "Invalid value for 'tool_choice': only allowed when 'tools' are specified."
        raise _ApiError(400, message, param="tool_choice", code="invalid_value")
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            message = (
                f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', 'required'."
            )
            raise _ApiError(400, message, param="tool_choice", code="invalid_value")
    elif not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        raise _wrong_type("tool_choice", "a string or an object with 'type'", choice)


def _check_tool(param: str, tool: object) -> None:
    if not isinstance(tool, dict):
        raise _wrong_type(param, "an object", tool)
    if tool.get("type") != "function":
        message = f"Invalid value for '{param}.type': expected 'function'."
        raise _ApiError(400, message, param=f"{param}.type", code="invalid_value")
    function = tool.get("function")
    if not isinstance(function, dict):
        raise (
            _missing(f"{param}.function")
            if function is None
            else _wrong_type(f"{param}.function", "an object", function)
        )
    name = function.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        message = f"Invalid '{param}.function.name': expected 1-64 of [a-zA-Z0-9_-]."
        raise _ApiError(400, message, param=f"{param}.function.name", code="invalid_value")
    for key, python_type, expected in (
        ("description", str, "a string"),
        ("parameters", dict, "an object"),
        ("strict", bool, "a boolean"),
    ):
        value = function.get(key)
        if value is not None and not isinstance(value, python_type):
            raise _wrong_type(f"{param}.function.{key}", expected, value)


def _check_content(param: str, content: object) -> None:
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _wrong_type(param, "a string, null or an array of content parts", content)
    for i, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _wrong_type(f"{param}[{i}]", "an object with a string 'type'", part)


def _check_assistant_tool_calls(param: str, tool_calls: object) -> list[str]:
    if not isinstance(tool_calls, list) or not tool_calls:
        raise _wrong_type(param, "a non-empty array", tool_calls)
    ids = []
    for i, call in enumerate(tool_calls):
        where = f"{param}[{i}]"
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(call, dict)
            or not isinstance(call.get("id"), str)
            or call.get("type") != "function"
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            expected = "an object {id, type: 'function', function: {name, arguments: string}}"
            raise _wrong_type(where, expected, call)
        ids.append(call["id"])
    return ids


def _unanswered(param: str, pending: Sequence[str]) -> _ApiError:
    message = (
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        f"to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        f"{', '.join(pending)}"
    )
    return _ApiError(400, message, param=param, code=None)


def _check_messages(messages: object) -> None:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array", messages)
    if not messages:
        message = "Invalid 'messages': empty array. Expected an array with minimum length 1."
        raise _ApiError(400, message, param="messages", code="empty_array")
    pending: list[str] = []
    for i, msg in enumerate(messages):
        pending = _check_message(f"messages[{i}]", msg, pending)
    if pending:
        raise _unanswered(f"messages[{len(messages)}]", pending)


def _check_message(param: str, msg: object, pending: list[str]) -> list[str]:
    """Check one message; returns the tool-call ids still awaiting a tool message."""
    if not isinstance(msg, dict):
        raise _wrong_type(param, "an object", msg)
    role = msg.get("role")
    if role is None:
        raise _missing(f"{param}.role")
    if role not in _ROLES:
        message = f"Invalid value: {role!r}. Supported values are: {', '.join(_ROLES)}."
        raise _ApiError(400, message, param=f"{param}.role", code="invalid_value")
    _check_content(f"{param}.content", msg.get("content"))
    if pending and role != "tool":
        raise _unanswered(f"{param}.role", pending)
    if "tool_calls" in msg and role != "assistant":
        message = f"Unrecognized parameter '{param}.tool_calls' for role {role!r}."
        raise _ApiError(400, message, param=f"{param}.tool_calls", code="unknown_parameter")
    if role == "assistant" and msg.get("tool_calls") is not None:
        return _check_assistant_tool_calls(f"{param}.tool_calls", msg["tool_calls"])
    if msg.get("content") is None:
        raise _missing(f"{param}.content")
    if role == "tool":
        return _check_tool_answer(param, msg.get("tool_call_id"), pending)
    return pending


def _check_tool_answer(param: str, call_id: object, pending: list[str]) -> list[str]:
    if call_id is None:
        raise _missing(f"{param}.tool_call_id")
    if not isinstance(call_id, str):
        raise _wrong_type(f"{param}.tool_call_id", "a string", call_id)
    if call_id not in pending:
        message = (
            "Invalid parameter: messages with role 'tool' must be a response to a preceding "
            f"message with 'tool_calls' (no pending call has id {call_id!r})."
        )
        raise _ApiError(400, message, param=f"{param}.role", code=None)
    return [p for p in pending if p != call_id]


def validate_chat_request(body: object) -> None:
    """Reject a Chat Completions body the way the real API would (raises the 400 to answer)."""
    if not isinstance(body, dict):
        raise _wrong_type("body", "an object", body)
    model = body.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str):
        raise _wrong_type("model", "a string", model)
    if not model.strip():
        raise _ApiError(400, "you must provide a model parameter", param="model", code=None)
    _check_messages(body.get("messages"))
    _check_scalars(body)
    _check_stop_and_stream_options(body)
    _check_tools(body)


# --- answers ------------------------------------------------------------------------------


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p.get("text"), str))
    return ""


def _tokens(chars: int) -> int:
    return math.ceil(chars / 4)


def _prompt_chars(messages: Sequence[Mapping[str, Any]]) -> int:
    total = 0
    for msg in messages:
        total += len(_text(msg.get("content")))
        for call in msg.get("tool_calls") or ():
            total += len(call["function"]["name"]) + len(call["function"]["arguments"])
    return total


def _first_text(messages: Sequence[Mapping[str, Any]], roles: tuple[str, ...]) -> str:
    return next((_text(m.get("content")) for m in messages if m["role"] in roles), "")


def _request_digest(body: Any) -> str:
    try:
        return jcs_digest(body)
    except ValueError:  # outside JCS's number domain (e.g. an int beyond 2**53)
        fallback = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(fallback.encode()).hexdigest()


@dataclass(frozen=True)
class _Turn:
    """The scripted turn a valid request selected, and everything its answer needs."""

    conversation: str
    index: int
    spec: TurnSpec
    body: Mapping[str, Any]
    digest: str
    created: int

    def tool_calls(self) -> list[dict[str, Any]]:
        return [
            {
                "id": call.id or f"call_sim_{self.index}_{i}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for i, call in enumerate(self.spec.tool_calls)
        ]

    def usage(self) -> dict[str, int]:
        completion_chars = len(self.spec.content or "") + sum(
            len(c["function"]["name"]) + len(c["function"]["arguments"]) for c in self.tool_calls()
        )
        prompt = _tokens(_prompt_chars(self.body["messages"]))
        completion = _tokens(completion_chars)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.spec.content}
        if self.spec.tool_calls:
            message["tool_calls"] = self.tool_calls()
        message["refusal"] = None
        return {
            "id": f"chatcmpl-sim-{self.digest[:24]}",
            "object": "chat.completion",
            "created": self.created,
            "model": self.body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": self.spec.resolved_finish_reason(),
                    "logprobs": None,
                }
            ],
            "usage": self.usage(),
            "system_fingerprint": "fp_sim",
        }

    def _deltas(self) -> Iterator[tuple[dict[str, Any], str | None]]:
        content = self.spec.content
        yield (
            {"role": "assistant", "content": "" if content is not None else None, "refusal": None},
            None,
        )
        for piece in re.findall(r"\s*\S+|\s+$", content or ""):
            yield {"content": piece}, None
        for i, call in enumerate(self.tool_calls()):
            head = {"index": i, "id": call["id"], "type": "function"}
            yield (
                {
                    "tool_calls": [
                        {**head, "function": {"name": call["function"]["name"], "arguments": ""}}
                    ]
                },
                None,
            )
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), _ARGUMENT_PIECE_CHARS):
                piece = arguments[start : start + _ARGUMENT_PIECE_CHARS]
                yield {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}, None
        yield {}, self.spec.resolved_finish_reason()

    def chunks(self) -> list[dict[str, Any]]:
        """The ``chat.completion.chunk`` objects of the streamed answer, in order."""
        options = self.body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage"))
        head = {
            "id": f"chatcmpl-sim-{self.digest[:24]}",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.body["model"],
            "system_fingerprint": "fp_sim",
        }
        tail = {"usage": None} if include_usage else {}
        chunks = [
            {
                **head,
                "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": f}],
                **tail,
            }
            for d, f in self._deltas()
        ]
        if include_usage:
            chunks.append({**head, "choices": [], "usage": self.usage()})
        return chunks


def _select_turn(script: SimScript, body: Mapping[str, Any], digest: str) -> _Turn:
    messages = body["messages"]
    first_user = _first_text(messages, ("user",))
    first_system = _first_text(messages, ("system", "developer"))
    chosen: int | None = next(
        (
            i
            for i, c in enumerate(script.conversations)
            if c.match.matches(
                model=body["model"], first_user=first_user, first_system=first_system
            )
        ),
        None,
    )
    if chosen is None and script.default is None:
        message = (
            f"provider-sim: no conversation in {script.source} matches this request "
            f"(model {body['model']!r}, first user message {first_user[:80]!r}) and the script "
            "has no `default`; add a conversation whose `match` selects it"
        )
        raise _ApiError(422, message, type="simulator_error", code="no_matching_conversation")
    turns = (
        script.conversations[chosen].turns
        if chosen is not None
        else cast(Any, script.default).turns
    )
    label = script.conversation_label(chosen)
    index = sum(1 for m in messages if m["role"] == "assistant")
    if index >= len(turns):
        message = (
            f"provider-sim: script exhausted: conversation {label!r} in {script.source} has "
            f"{len(turns)} turn(s) but this request asks for turn {index} (it carries {index} "
            "assistant message(s)); add a turn to the script or find why the harness loops"
        )
        raise _ApiError(422, message, type="simulator_error", code="script_exhausted")
    return _Turn(label, index, turns[index], body, digest, script.created)


def _fault_error(turn: _Turn, fault: FaultSpec, attempt: int) -> _ApiError:
    of = f" of {fault.times}" if fault.times is not None else ""
    message = fault.message or (
        f"provider-sim injected HTTP {fault.status} (conversation {turn.conversation!r}, "
        f"turn {turn.index}, failure {attempt}{of})"
    )
    if fault.status == 429:
        default_type, default_code = "requests", "rate_limit_exceeded"
    elif fault.status >= 500:
        default_type, default_code = "server_error", None
    else:
        default_type, default_code = "invalid_request_error", None
    headers = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
    return _ApiError(
        fault.status,
        message,
        type=fault.type or default_type,
        code=fault.code or default_code,
        headers=headers,
    )


# --- the server ---------------------------------------------------------------------------


class _SimServer(ThreadingHTTPServer):
    """The HTTP server plus the simulator's shared, lock-guarded state."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], script: SimScript) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.script = script
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.fault_counts: dict[tuple[str, int, str], int] = {}
        self.log: list[RecordedRequest] = []
        self.connections: set[socket.socket] = set()

    def take_fault(self, turn: _Turn) -> int | None:
        """Count one failure of ``turn`` if its fault is still armed; the failure number."""
        fault = turn.spec.fault
        if fault is None:
            return None
        key = (turn.conversation, turn.index, turn.digest)
        with self.lock:
            done = self.fault_counts.get(key, 0)
            if fault.times is not None and done >= fault.times:
                return None
            self.fault_counts[key] = done + 1
            return done + 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "provider-sim"
    sys_version = ""
    timeout = 60  # idle keep-alive connections release their thread

    @property
    def sim(self) -> _SimServer:
        return cast(_SimServer, self.server)

    def setup(self) -> None:
        super().setup()
        with self.sim.lock:
            self.sim.connections.add(self.connection)

    def finish(self) -> None:
        with self.sim.lock:
            self.sim.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's per-request stderr line; ``.requests`` is the log."""

    def send_response(self, code: int, message: str | None = None) -> None:
        """Like the stdlib's, minus the ``Date`` header: whole responses stay deterministic."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("server", self.version_string())

    def do_POST(self) -> None:
        self._dispatch()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _record(self, body: Any, status: int, turn: _Turn | None = None) -> None:
        headers = {
            k.lower(): v for k, v in self.headers.items() if k.lower() not in _HIDDEN_HEADERS
        }
        record = RecordedRequest(
            self.command,
            self.path,
            headers,
            body,
            status,
            turn.conversation if turn else None,
            turn.index if turn else None,
        )
        with self.sim.lock:
            self.sim.log.append(record)

    def _dispatch(self) -> None:
        body: Any = None
        request_id = hashlib.sha256(self.path.encode()).hexdigest()
        try:
            raw = self._read_body()
            request_id = hashlib.sha256(raw).hexdigest()
            if self.path.split("?")[0] != _CHAT_PATH:
                raise _ApiError(
                    404, f"Invalid URL ({self.command} {self.path})", code="unknown_url"
                )
            if self.command != "POST":
                raise _ApiError(405, f"Method {self.command} not allowed on {_CHAT_PATH}; use POST")
            self._check_auth()
            body = _parse_json(raw)
            request_id = _request_digest(body)
            validate_chat_request(body)
            turn = _select_turn(self.sim.script, body, request_id)
        except _ApiError as err:
            self._record(body, err.status)
            self._send(err.status, _dumps(err.payload), request_id, err.headers)
            return
        self._answer(turn)

    def _read_body(self) -> bytes:
        length = self.headers.get("content-length")
        if length is None:
            if self.command in ("GET", "DELETE"):
                return b""
            self.close_connection = True
            raise _ApiError(411, "A Content-Length header is required.", code="length_required")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            raise _ApiError(413, f"Request body must be at most {MAX_BODY_BYTES} bytes.")
        return self.rfile.read(int(length))

    def _check_auth(self) -> None:
        scheme, _, key = (self.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            message = (
                "You didn't provide an API key. Provide it in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY); the simulator accepts any key."
            )
            raise _ApiError(401, message, code="invalid_api_key")

    def _answer(self, turn: _Turn) -> None:
        spec = turn.spec
        if spec.delay_ms and self.sim.stopping.wait(spec.delay_ms / 1000):
            self._abort()
            return
        attempt = self.sim.take_fault(turn)
        if spec.fault is not None and attempt is not None:
            err = _fault_error(turn, spec.fault, attempt)
            self._record(turn.body, err.status, turn)
            self._send(err.status, _dumps(err.payload), turn.digest, err.headers)
            return
        self._record(turn.body, 200, turn)
        if turn.body.get("stream"):
            self._stream(turn)
            return
        payload = _dumps(turn.completion())
        if spec.malformed:
            payload = payload[: len(payload) // 2]
        self._send(200, payload, turn.digest)

    def _send(
        self, status: int, payload: bytes, request_id: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self._common_headers(request_id, "application/json")
        self.send_header("content-length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _common_headers(self, request_id: str, content_type: str) -> None:
        self.send_header("content-type", content_type)
        self.send_header("x-request-id", f"req_sim_{request_id[:24]}")
        self.send_header("openai-processing-ms", "1")

    def _stream(self, turn: _Turn) -> None:
        spec = turn.spec
        self.send_response(200)
        self._common_headers(turn.digest, "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        events = [b"data: " + _dumps(chunk) + b"\n\n" for chunk in turn.chunks()]
        if spec.malformed:
            self._write_chunk(events[0][: len(events[0]) // 2] + b"\n\n")
            self._write_chunk(b"")
            return
        for sent, event in enumerate(events):
            if spec.fail_mid_stream_after is not None and sent >= spec.fail_mid_stream_after:
                self._abort()
                return
            if sent and spec.chunk_delay_ms and self.sim.stopping.wait(spec.chunk_delay_ms / 1000):
                self._abort()
                return
            self._write_chunk(event)
        if spec.fail_mid_stream_after is not None:
            self._abort()
            return
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _abort(self) -> None:
        """Drop the connection without finishing the response (a mid-stream failure)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        message = (
            "We could not parse the JSON body of your request. The OpenAI API expects a JSON "
            f"payload, but what was sent was not valid JSON ({exc})."
        )
        raise _ApiError(400, message) from exc


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- public API ---------------------------------------------------------------------------


@dataclass
class SimulatorHandle:
    """A running simulator; a context manager that stops it on exit."""

    _server: _SimServer
    _thread: threading.Thread
    host: str
    port: int
    _stopped: bool = field(default=False, init=False)

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url``, e.g. ``http://127.0.0.1:41234/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def script(self) -> SimScript:
        """The script being answered from."""
        return self._server.script

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._server.lock:
            return list(self._server.log)

    def reset(self) -> None:
        """Forget received requests and re-arm every fault's ``times`` counter."""
        with self._server.lock:
            self._server.log.clear()
            self._server.fault_counts.clear()

    def stop(self) -> None:
        """Stop serving, cut open connections and release the port; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._server.stopping.set()
        self._server.shutdown()
        with self._server.lock:
            connections = list(self._server.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_simulator(
    script: SimScript | Path | str, *, host: str = "127.0.0.1", port: int = 0
) -> SimulatorHandle:
    """Serve ``script`` on ``host:port`` (0 picks a free port) from a background thread."""
    loaded = script if isinstance(script, SimScript) else load_script(script)
    server = _SimServer((host, port), loaded)
    bound_host, bound_port = server.server_address[:2]
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="provider-sim",
        daemon=True,
    )
    thread.start()
    return SimulatorHandle(server, thread, str(bound_host), int(bound_port))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: serve a script until SIGINT/SIGTERM. Exit codes: 0 stopped, 2 bad script or usage."""
    parser = argparse.ArgumentParser(
        prog="python -m replay.provider_sim",
        description="Serve OpenAI Chat Completions on loopback from a provider-sim script.",
    )
    parser.add_argument("--script", required=True, type=Path, help="YAML or JSON script file")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", default=0, type=int, help="port to bind; 0 picks a free one")
    args = parser.parse_args(argv)
    try:
        script = load_script(args.script)
    except SimScriptError as exc:
        print(exc, file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with start_simulator(script, host=args.host, port=args.port) as handle:
            print(f"provider-sim listening on {handle.base_url}", flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
