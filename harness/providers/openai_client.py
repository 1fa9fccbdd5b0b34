"""OpenAI Chat Completions through the official SDK: retries off, errors mapped, transport injectable.

Both ways of reading an answer give the same :class:`ChatResponse`: a streamed answer is
assembled from its chunks (content pieces joined, each tool call's ``arguments`` joined in
index order), and a stream that ends without a ``finish_reason`` is a retryable failure,
never a silently short answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx2
import openai

from harness.providers.base import (
    ChatRequest,
    ChatResponse,
    ProviderCallError,
    ToolCallRequest,
    retry_after_seconds,
)

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIChatClient:
    """A ``ModelClient`` for any OpenAI-compatible endpoint (the simulator included)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float = 30.0,
        name: str = "openai",
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.name = name
        http_client = httpx2.Client(transport=transport, timeout=timeout) if transport else None
        self._client = openai.OpenAI(
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
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "seed": request.seed,
        }
        if request.tools:
            kwargs["tools"] = request.tools
        try:
            if request.stream:
                chunks = self._client.chat.completions.create(
                    **kwargs, stream=True, stream_options={"include_usage": True}
                )
                return _assemble(self.name, chunks)
            completion = self._client.chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            raise ProviderCallError(
                f"{self.name} answered HTTP {exc.status_code}: {_error_message(exc)}"
                + _after_note(exc.response.headers),
                provider=self.name,
                retryable=exc.status_code in RETRYABLE_STATUSES,
                status=exc.status_code,
                retry_after=retry_after_seconds(exc.response.headers),
            ) from exc
        except (openai.APITimeoutError, httpx2.TimeoutException) as exc:
            raise ProviderCallError(f"{self.name} timed out", provider=self.name, retryable=True) from exc
        except openai.APIConnectionError as exc:
            raise ProviderCallError(
                f"{self.name} connection failed: {type(exc.__cause__).__name__ if exc.__cause__ else exc}",
                provider=self.name,
                retryable=True,
            ) from exc
        except httpx2.TransportError as exc:  # a body cut after the headers escapes the SDK unwrapped
            raise ProviderCallError(
                f"{self.name} connection failed: {type(exc).__name__}", provider=self.name, retryable=True
            ) from exc
        except (openai.APIResponseValidationError, json.JSONDecodeError) as exc:
            # The SDK lets a malformed 200 body escape as a bare JSONDecodeError.
            raise ProviderCallError(
                f"{self.name} sent a malformed response", provider=self.name, retryable=True
            ) from exc
        except openai.APIError as exc:  # an error event inside a 200 stream
            raise ProviderCallError(
                f"{self.name} sent an error event mid-stream: {exc.message}",
                provider=self.name,
                retryable=True,
            ) from exc
        return _to_response(self.name, completion)


def _after_note(headers: Any) -> str:
    wait = retry_after_seconds(headers)
    return f" (retry-after {wait:g}s)" if wait is not None else ""


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if isinstance(message, str):
            return message
    return exc.message


def _to_response(provider: str, completion: Any) -> ChatResponse:
    choices = getattr(completion, "choices", None)
    if not choices:
        raise ProviderCallError(f"{provider} returned no choices", provider=provider, retryable=True)
    choice = choices[0]
    message = choice.message
    calls = tuple(
        ToolCallRequest(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
        for c in (message.tool_calls or [])
        if getattr(c, "type", "function") == "function"
    )
    usage = completion.usage
    return ChatResponse(
        content=message.content,
        tool_calls=calls,
        finish_reason=choice.finish_reason or "stop",
        usage={
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
            "total_tokens": usage.total_tokens if usage else 0,
        },
    )


def _assemble(provider: str, chunks: Iterable[Any]) -> ChatResponse:  # noqa: PLR0912 - one branch per delta field
    """One answer from ``chat.completion.chunk`` objects; tool-call arguments joined per index."""
    content: list[str] = []
    saw_content = False
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage: dict[str, int] = {}
    for chunk in chunks:
        if chunk.usage is not None:
            usage = {
                "prompt_tokens": chunk.usage.prompt_tokens,
                "completion_tokens": chunk.usage.completion_tokens,
                "total_tokens": chunk.usage.total_tokens,
            }
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.content is not None:
                saw_content = True
                content.append(delta.content)
            for piece in delta.tool_calls or ():
                call = calls.setdefault(piece.index, {"id": None, "name": "", "arguments": []})
                if piece.id:
                    call["id"] = piece.id
                if piece.function is not None:
                    if piece.function.name:
                        call["name"] += piece.function.name
                    if piece.function.arguments:
                        call["arguments"].append(piece.function.arguments)
            if choice.finish_reason is not None:
                finish = choice.finish_reason
    if finish is None:
        raise ProviderCallError(
            f"{provider} stream ended before its final chunk", provider=provider, retryable=True
        )
    tool_calls = []
    for index in sorted(calls):
        call = calls[index]
        if not call["id"] or not call["name"]:
            raise ProviderCallError(
                f"{provider} streamed tool call {index} without an id or name",
                provider=provider,
                retryable=True,
            )
        tool_calls.append(
            ToolCallRequest(id=call["id"], name=call["name"], arguments="".join(call["arguments"]) or "{}")
        )
    return ChatResponse(
        content="".join(content) if saw_content else None,
        tool_calls=tuple(tool_calls),
        finish_reason=finish,
        usage=usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    )
