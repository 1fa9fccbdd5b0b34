"""The simulator's Anthropic Messages wire: request validation, answers and SSE events for a turn.

A Messages request is first checked the way the real API would (400 ``invalid_request_error``),
then mapped to the neutral Chat-Completions-shaped body the script matcher reads, so one script
answers both providers the same: same conversation, same turn (assistant messages so far),
same token counts. Answers are built from the same :class:`~replay._sim_wire.Turn`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from replay._sim_wire import ApiError, Turn

MESSAGES_PATH = "/v1/messages"
_ARGUMENT_PIECE_CHARS = 16
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens", "content_filter": "refusal"}
_BLOCKS = frozenset({"text", "image", "document", "tool_use", "tool_result"})


def error_type(status: int) -> str:
    """The Anthropic error ``type`` for an HTTP status."""
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_payload(err: ApiError) -> dict[str, Any]:
    """An OpenAI-shaped :class:`ApiError` in the Anthropic error envelope."""
    inner = err.payload["error"]
    kind = inner.get("type")
    if kind in (None, "invalid_request_error", "server_error", "requests", "simulator_error"):
        kind = "simulator_error" if kind == "simulator_error" else error_type(err.status)
    return {"type": "error", "error": {"type": kind, "message": inner["message"]}}


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def _check_blocks(where: str, content: object, *, role: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise _bad(f"{where}: content must be a string or a non-empty array of content blocks")
    for i, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") not in _BLOCKS:
            raise _bad(f"{where}.{i}: expected a content block with a known `type`")
        kind = block["type"]
        if kind == "text" and not isinstance(block.get("text"), str):
            raise _bad(f"{where}.{i}.text: Field required")
        if kind == "tool_use" and (
            role != "assistant"
            or not isinstance(block.get("id"), str)
            or not isinstance(block.get("name"), str)
            or not isinstance(block.get("input"), dict)
        ):
            raise _bad(f"{where}.{i}: tool_use needs id, name and an object input, in an assistant turn")
        if kind == "tool_result" and (role != "user" or not isinstance(block.get("tool_use_id"), str)):
            raise _bad(f"{where}.{i}: tool_result needs tool_use_id, in a user turn")


def _tool_use_ids(content: object) -> list[str]:
    if not isinstance(content, list):
        return []
    return [b["id"] for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]


def validate_messages_request(body: object) -> None:  # noqa: PLR0912 - one check per field, in API order
    """Reject a Messages body the way the real API would (raises the 400 to answer)."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("model: Field required (a non-empty string)")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _bad("max_tokens: Field required (an integer >= 1)")
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 1
    ):
        raise _bad("temperature: Input should be a number between 0 and 1")
    system = body.get("system")
    if system is not None:
        _check_blocks("system", system, role="system")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _bad("stream: Input should be a valid boolean")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            name = tool.get("name") if isinstance(tool, dict) else None
            if not isinstance(name, str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,128}", name):
                raise _bad(f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise _bad(f"tools.{i}.input_schema: an object schema with type 'object' is required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: Field required (a non-empty list)")
    pending: list[str] = []
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in ("user", "assistant"):
            raise _bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise _bad("messages: the first message must use the 'user' role")
        _check_blocks(f"messages.{i}.content", msg.get("content"), role=role)
        if pending:
            content = msg.get("content")
            answered = (
                {
                    b.get("tool_use_id")
                    for b in content
                    if isinstance(b, dict) and b.get("type") == "tool_result"
                }
                if isinstance(content, list)
                else set()
            )
            missing = [p for p in pending if p not in answered]
            if role != "user" or missing:
                raise _bad(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
                    f"after: {', '.join(missing or pending)}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message."
                )
        pending = _tool_use_ids(msg.get("content")) if role == "assistant" else []


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def neutral_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The Chat-Completions-shaped view the script matcher and token counts read."""
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _text(body["system"])})
    for msg in body["messages"]:
        content = msg["content"]
        if msg["role"] == "assistant":
            calls = [
                {
                    "id": b["id"],
                    "type": "function",
                    "function": {
                        "name": b["name"],
                        "arguments": json.dumps(b["input"], separators=(",", ":")),
                    },
                }
                for b in (content if isinstance(content, list) else [])
                if b.get("type") == "tool_use"
            ]
            entry: dict[str, Any] = {"role": "assistant", "content": _text(content) or None}
            if calls:
                entry["tool_calls"] = calls
            messages.append(entry)
            continue
        results = [b for b in content if b.get("type") == "tool_result"] if isinstance(content, list) else []
        for block in results:
            messages.append(
                {"role": "tool", "tool_call_id": block["tool_use_id"], "content": _text(block.get("content"))}
            )
        if not results or _text(content):
            messages.append({"role": "user", "content": _text(content)})
    return {"model": body["model"], "messages": messages, "stream": bool(body.get("stream"))}


def _input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"_raw_arguments": arguments}


def _blocks(turn: Turn) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if turn.spec.content is not None:
        blocks.append({"type": "text", "text": turn.spec.content})
    for i, call in enumerate(turn.spec.tool_calls):
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id or f"toolu_sim_{turn.index}_{i}",
                "name": call.name,
                "input": _input(call.arguments_json()),
            }
        )
    return blocks


def message(turn: Turn, *, model: str) -> dict[str, Any]:
    """The ``Message`` a non-streamed request gets."""
    usage = turn.usage()
    return {
        "id": f"msg_sim_{turn.digest[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _blocks(turn),
        "stop_reason": _STOP[turn.spec.resolved_finish_reason()],
        "stop_sequence": None,
        "usage": {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"]},
    }


def events(turn: Turn, *, model: str) -> list[tuple[str, dict[str, Any]]]:
    """The named SSE events of a streamed answer, ``message_start`` to ``message_stop``."""
    whole = message(turn, model=model)
    start = {**whole, "content": [], "stop_reason": None, "usage": {**whole["usage"], "output_tokens": 0}}
    out: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(whole["content"]):
        if block["type"] == "text":
            head: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [
                {"type": "text_delta", "text": piece} for piece in re.findall(r"\s*\S+|\s+$", block["text"])
            ]
        else:
            head = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            raw = json.dumps(block["input"], ensure_ascii=False, separators=(",", ":"))
            deltas = [
                {"type": "input_json_delta", "partial_json": raw[i : i + _ARGUMENT_PIECE_CHARS]}
                for i in range(0, len(raw), _ARGUMENT_PIECE_CHARS)
            ]
        out.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": head})
        )
        out.extend(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        )
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": whole["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": whole["usage"]["output_tokens"]},
            },
        )
    )
    out.append(("message_stop", {"type": "message_stop"}))
    return out


def error_event(message_text: str, *, kind: str = "overloaded_error") -> tuple[str, dict[str, Any]]:
    """The ``error`` event sent inside a 200 stream."""
    return "error", {"type": "error", "error": {"type": kind, "message": message_text}}
