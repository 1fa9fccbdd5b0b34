"""Anthropic Messages through the official SDK: retries off, errors mapped, transport injectable.

The harness keeps one conversation format (Chat Completions messages); this client converts
it to Messages (``system`` lifted out, tool calls as ``tool_use`` blocks, tool answers as
``tool_result`` blocks in a user turn) and converts the answer back. A streamed answer is
assembled from ``content_block_*`` events (``input_json_delta`` pieces joined per block) and
gives the same :class:`ChatResponse` as a plain one; a stream without ``message_stop`` or
with an ``error`` event is a retryable failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import anthropic
import httpx2

from harness.providers.base import (
    ChatRequest,
    ChatResponse,
    ProviderCallError,
    ToolCallRequest,
    retry_after_seconds,
)

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
RETRYABLE_ERROR_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
}


class AnthropicMessagesClient:
    """A ``ModelClient`` for the Anthropic Messages API (the simulator included)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float = 30.0,
        name: str = "anthropic",
        max_tokens: int = 1024,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self._max_tokens = max_tokens
        http_client = httpx2.Client(transport=transport, timeout=timeout) if transport else None
        self._client = anthropic.Anthropic(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=0,  # our resilience layer retries, and the trace records it
            http_client=http_client,
        )

    def close(self) -> None:
        """Release the SDK's pooled connections."""
        self._client.close()

    def complete(self, request: ChatRequest) -> ChatResponse:
        kwargs = to_messages_request(request, max_tokens=self._max_tokens)
        try:
            if request.stream:
                return _assemble(self.name, self._client.messages.create(**kwargs, stream=True))
            message = self._client.messages.create(**kwargs)
        except anthropic.APIStatusError as exc:
            raise _status_error(self.name, exc) from exc
        except (anthropic.APITimeoutError, httpx2.TimeoutException) as exc:
            raise ProviderCallError(f"{self.name} timed out", provider=self.name, retryable=True) from exc
        except anthropic.APIConnectionError as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else str(exc)
            raise ProviderCallError(
                f"{self.name} connection failed: {cause}", provider=self.name, retryable=True
            ) from exc
        except httpx2.TransportError as exc:  # a body cut after the headers escapes the SDK unwrapped
            raise ProviderCallError(
                f"{self.name} connection failed: {type(exc).__name__}", provider=self.name, retryable=True
            ) from exc
        except (anthropic.APIResponseValidationError, json.JSONDecodeError) as exc:
            raise ProviderCallError(
                f"{self.name} sent a malformed response", provider=self.name, retryable=True
            ) from exc
        return _to_response(self.name, message)


def to_messages_request(request: ChatRequest, *, max_tokens: int) -> dict[str, Any]:
    """The ``messages.create`` arguments for a harness request.

    No ``seed`` and no ``temperature``: this SDK's ``messages.create`` takes neither (the
    trace still records the run's temperature 0 and seed in ``prompts``).
    """
    system = "\n\n".join(
        str(m.get("content") or "") for m in request.messages if m["role"] in ("system", "developer")
    )
    messages: list[dict[str, Any]] = []
    for msg in request.messages:
        role = msg["role"]
        if role in ("system", "developer"):
            continue
        if role == "tool":
            block = {"type": "tool_result", "tool_use_id": msg["tool_call_id"], "content": msg["content"]}
            if messages and messages[-1]["role"] == "user" and isinstance(messages[-1]["content"], list):
                messages[-1]["content"].append(block)
            else:
                messages.append({"role": "user", "content": [block]})
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            if msg.get("content"):
                blocks.append({"type": "text", "text": msg["content"]})
            for call in msg.get("tool_calls") or ():
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": call["function"]["name"],
                        "input": _tool_input(call["function"].get("arguments") or "{}"),
                    }
                )
            messages.append({"role": "assistant", "content": blocks or [{"type": "text", "text": ""}]})
        else:
            messages.append({"role": "user", "content": msg.get("content") or ""})
    kwargs: dict[str, Any] = {
        "model": request.model,
        "max_tokens": max_tokens,
        "messages": messages,
    }
    if system:
        kwargs["system"] = system
    if request.tools:
        kwargs["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters") or {"type": "object", "properties": {}},
            }
            for t in request.tools
        ]
    return kwargs


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return {"_raw_arguments": arguments}  # what the model sent, kept rather than dropped
    return value if isinstance(value, dict) else {"_raw_arguments": arguments}


def _arguments(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _status_error(provider: str, exc: anthropic.APIStatusError) -> ProviderCallError:
    body: dict[str, Any] = exc.body if isinstance(exc.body, dict) else {}
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    kind = str(error.get("type") or "")
    message = str(error.get("message") or exc.message)
    if exc.status_code < 400:  # the SDK raises an ``error`` event inside a 200 stream this way
        return ProviderCallError(
            f"{provider} sent an error event mid-stream: {kind}: {message}",
            provider=provider,
            retryable=kind in RETRYABLE_ERROR_TYPES,
        )
    wait = retry_after_seconds(exc.response.headers)
    note = f" (retry-after {wait:g}s)" if wait is not None else ""
    return ProviderCallError(
        f"{provider} answered HTTP {exc.status_code}: {message}{note}",
        provider=provider,
        retryable=exc.status_code in RETRYABLE_STATUSES,
        status=exc.status_code,
        retry_after=wait,
    )


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def _to_response(provider: str, message: Any) -> ChatResponse:
    blocks = getattr(message, "content", None)
    if not isinstance(blocks, list):
        raise ProviderCallError(f"{provider} returned no content", provider=provider, retryable=True)
    texts = [b.text for b in blocks if b.type == "text"]
    calls = tuple(
        ToolCallRequest(id=b.id, name=b.name, arguments=_arguments(b.input))
        for b in blocks
        if b.type == "tool_use"
    )
    usage = message.usage
    return ChatResponse(
        content="".join(texts) if texts else None,
        tool_calls=calls,
        finish_reason=STOP_REASONS.get(message.stop_reason or "end_turn", "stop"),
        usage=_usage(usage.input_tokens, usage.output_tokens) if usage else _usage(0, 0),
    )


def _assemble(provider: str, events: Iterable[Any]) -> ChatResponse:  # noqa: PLR0912 - one branch per event kind
    """One answer from raw stream events; each tool_use block's ``partial_json`` joined in order."""
    blocks: dict[int, dict[str, Any]] = {}
    input_tokens = output_tokens = 0
    stop_reason: str | None = None
    stopped = False
    for event in events:
        kind = event.type
        if kind == "message_start":
            input_tokens = event.message.usage.input_tokens
            output_tokens = event.message.usage.output_tokens
        elif kind == "content_block_start":
            block = event.content_block
            entry: dict[str, Any] = {"type": block.type, "parts": []}
            if block.type == "tool_use":
                entry.update(id=block.id, name=block.name)
            elif block.type == "text" and block.text:
                entry["parts"].append(block.text)
            blocks[event.index] = entry
        elif kind == "content_block_delta":
            delta = event.delta
            target = blocks.get(event.index)
            if target is None:
                raise ProviderCallError(
                    f"{provider} streamed a delta for unknown block {event.index}",
                    provider=provider,
                    retryable=True,
                )
            if delta.type == "text_delta":
                target["parts"].append(delta.text)
            elif delta.type == "input_json_delta":
                target["parts"].append(delta.partial_json)
        elif kind == "message_delta":
            stop_reason = event.delta.stop_reason or stop_reason
            output_tokens = event.usage.output_tokens
        elif kind == "message_stop":
            stopped = True
    if not stopped:
        raise ProviderCallError(
            f"{provider} stream ended before message_stop", provider=provider, retryable=True
        )
    texts: list[str] = []
    calls: list[ToolCallRequest] = []
    for index in sorted(blocks):
        block = blocks[index]
        if block["type"] == "text":
            texts.append("".join(block["parts"]))
        elif block["type"] == "tool_use":
            raw = "".join(block["parts"]) or "{}"
            try:
                arguments = _arguments(json.loads(raw))
            except json.JSONDecodeError as exc:
                raise ProviderCallError(
                    f"{provider} streamed tool input that is not JSON", provider=provider, retryable=True
                ) from exc
            calls.append(ToolCallRequest(id=block["id"], name=block["name"], arguments=arguments))
    return ChatResponse(
        content="".join(texts) if texts else None,
        tool_calls=tuple(calls),
        finish_reason=STOP_REASONS.get(stop_reason or "end_turn", "stop"),
        usage=_usage(input_tokens, output_tokens),
    )
