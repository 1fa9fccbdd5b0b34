"""OpenAI Chat Completions through the official SDK: retries off, errors mapped, transport injectable."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai

from harness.providers.base import ChatRequest, ChatResponse, ProviderCallError, ToolCallRequest

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
            completion = self._client.chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            raise ProviderCallError(
                f"{self.name} answered HTTP {exc.status_code}: {_error_message(exc)}",
                provider=self.name,
                retryable=exc.status_code in RETRYABLE_STATUSES,
                status=exc.status_code,
            ) from exc
        except openai.APITimeoutError as exc:
            raise ProviderCallError(f"{self.name} timed out", provider=self.name, retryable=True) from exc
        except openai.APIConnectionError as exc:
            raise ProviderCallError(
                f"{self.name} connection failed: {type(exc.__cause__).__name__ if exc.__cause__ else exc}",
                provider=self.name,
                retryable=True,
            ) from exc
        except (openai.APIResponseValidationError, json.JSONDecodeError) as exc:
            # The SDK lets a malformed 200 body escape as a bare JSONDecodeError.
            raise ProviderCallError(
                f"{self.name} sent a malformed response", provider=self.name, retryable=True
            ) from exc
        return _to_response(self.name, completion)


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
