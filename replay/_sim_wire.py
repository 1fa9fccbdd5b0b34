"""The simulator's wire rules: Chat Completions request validation and the answers a scripted turn builds."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from harness.canonical import digest as jcs_digest
from replay.sim_script import FaultSpec, SimScript, TurnSpec

_ROLES = ("system", "user", "assistant", "tool", "developer")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ARGUMENT_PIECE_CHARS = 16


class ApiError(Exception):
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


def _wrong_type(param: str, expected: str, value: object) -> ApiError:
    message = f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead."
    return ApiError(400, message, param=param, code="invalid_type")


def _missing(param: str) -> ApiError:
    return ApiError(
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
            raise ApiError(400, message, param=name, code="invalid_value")
    for name, minimum in _INTEGER_MINIMA.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong_type(name, "an integer", value)
        if minimum is not None and value < minimum:
            message = f"Invalid '{name}': expected a value >= {minimum}, but got {value}."
            raise ApiError(400, message, param=name, code="integer_below_min_value")
    for name, (python_type, expected) in _SIMPLE_TYPES.items():
        value = body.get(name)
        if value is not None and (
            not isinstance(value, python_type)
            or (python_type is not bool and isinstance(value, bool))
        ):
            raise _wrong_type(name, expected, value)
    if body.get("n") not in (None, 1):
        raise ApiError(
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
        raise ApiError(400, message, param="stream_options", code="invalid_value")
    if isinstance(options, dict) and not isinstance(options.get("include_usage", False), bool):
        raise _wrong_type("stream_options.include_usage", "a boolean", options["include_usage"])


def _check_tools(body: Mapping[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _wrong_type("tools", "an array", tools)
        if not tools:
            message = "Invalid 'tools': empty array. Expected an array with minimum length 1."
            raise ApiError(400, message, param="tools", code="empty_array")
        for i, tool in enumerate(tools):
            _check_tool(f"tools[{i}]", tool)
    choice = body.get("tool_choice")
    if choice is None:
        return
    if not tools:
        message = "Invalid value for 'tool_choice': only allowed when 'tools' are specified."
        raise ApiError(400, message, param="tool_choice", code="invalid_value")
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            message = (
                f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', 'required'."
            )
            raise ApiError(400, message, param="tool_choice", code="invalid_value")
    elif not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        raise _wrong_type("tool_choice", "a string or an object with 'type'", choice)


def _check_tool(param: str, tool: object) -> None:
    if not isinstance(tool, dict):
        raise _wrong_type(param, "an object", tool)
    if tool.get("type") != "function":
        message = f"Invalid value for '{param}.type': expected 'function'."
        raise ApiError(400, message, param=f"{param}.type", code="invalid_value")
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
        raise ApiError(400, message, param=f"{param}.function.name", code="invalid_value")
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


def _unanswered(param: str, pending: Sequence[str]) -> ApiError:
    message = (
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        f"to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        f"{', '.join(pending)}"
    )
    return ApiError(400, message, param=param, code=None)


def _check_messages(messages: object) -> None:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array", messages)
    if not messages:
        message = "Invalid 'messages': empty array. Expected an array with minimum length 1."
        raise ApiError(400, message, param="messages", code="empty_array")
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
        raise ApiError(400, message, param=f"{param}.role", code="invalid_value")
    _check_content(f"{param}.content", msg.get("content"))
    if pending and role != "tool":
        raise _unanswered(f"{param}.role", pending)
    if "tool_calls" in msg and role != "assistant":
        message = f"Unrecognized parameter '{param}.tool_calls' for role {role!r}."
        raise ApiError(400, message, param=f"{param}.tool_calls", code="unknown_parameter")
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
        raise ApiError(400, message, param=f"{param}.role", code=None)
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
        raise ApiError(400, "you must provide a model parameter", param="model", code=None)
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


def request_digest(body: Any) -> str:
    try:
        return jcs_digest(body)
    except ValueError:  # outside JCS's number domain (e.g. an int beyond 2**53)
        fallback = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(fallback.encode()).hexdigest()


@dataclass(frozen=True)
class Turn:
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


def select_turn(script: SimScript, body: Mapping[str, Any], digest: str) -> Turn:
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
        raise ApiError(422, message, type="simulator_error", code="no_matching_conversation")
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
        raise ApiError(422, message, type="simulator_error", code="script_exhausted")
    return Turn(label, index, turns[index], body, digest, script.created)


def fault_error(turn: Turn, fault: FaultSpec, attempt: int) -> ApiError:
    """The error answer of a ``kind: status`` fault (OpenAI shape; the Anthropic wire re-wraps it)."""
    status = fault.status if fault.status is not None else 500
    of = f" of {fault.times}" if fault.times is not None else ""
    message = fault.message or (
        f"provider-sim injected HTTP {status} (conversation {turn.conversation!r}, "
        f"turn {turn.index}, failure {attempt}{of})"
    )
    if status == 429:
        default_type, default_code = "requests", "rate_limit_exceeded"
    elif status >= 500:
        default_type, default_code = "server_error", None
    else:
        default_type, default_code = "invalid_request_error", None
    headers = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
    return ApiError(
        status,
        message,
        type=fault.type or default_type,
        code=fault.code or default_code,
        headers=headers,
    )
