"""Faults that leave no response, injected at the SDK's transport the same way in record and replay.

A cassette can only hold real responses. A connect timeout, a read timeout, a stall or a
connection reset has none, so the replay engine wraps the provider clients' transport in
:class:`FaultInjectingTransport`: it picks the scripted turn for each request exactly as the
simulator does (same conversation, same turn, same per-request ``times`` counter) and, for a
transport fault, raises the error httpx would raise (or returns headers whose body breaks)
before anything reaches vcrpy. Recording and replaying therefore see the same failures, the
harness retries the same way, and the trace's ``retries`` are identical.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import httpx2

from replay._sim_wire import ApiError, Turn, request_digest, select_turn, validate_chat_request
from replay.sim.anthropic_wire import neutral_body, validate_messages_request
from replay.sim_script import TRANSPORT_FAULTS, FaultSpec, SimScript

CHAT_SUFFIX = "/chat/completions"
MESSAGES_SUFFIX = "/v1/messages"


def turn_for(script: SimScript, path: str, body: Any) -> tuple[Turn, str] | None:
    """The scripted turn a provider request selects and its wire (``openai``/``anthropic``).

    None when the request is not one the simulator would answer with a turn (bad path,
    invalid body, no matching conversation): those get the simulator's own error.
    """
    try:
        if path.endswith(MESSAGES_SUFFIX):
            validate_messages_request(body)
            return select_turn(script, neutral_body(body), request_digest(body)), "anthropic"
        if path.endswith(CHAT_SUFFIX):
            validate_chat_request(body)
            return select_turn(script, body, request_digest(body)), "openai"
    except ApiError:
        return None
    return None


class FaultCounter:
    """How often each (conversation, turn, exact request) fault has fired; lock-guarded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int, str], int] = {}

    def take(self, turn: Turn) -> int | None:
        """Count one failure of ``turn`` if its fault is still armed; the failure number."""
        fault = turn.spec.fault
        if fault is None:
            return None
        key = (turn.conversation, turn.index, turn.digest)
        with self._lock:
            done = self._counts.get(key, 0)
            if fault.times is not None and done >= fault.times:
                return None
            self._counts[key] = done + 1
            return done + 1

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


class _CutBody(httpx2.SyncByteStream):
    """A body whose connection drops before the first byte (headers were already sent)."""

    def __init__(self, expected: int) -> None:
        self._expected = expected

    def __iter__(self) -> Iterator[bytes]:
        raise httpx2.RemoteProtocolError(
            "peer closed connection without sending complete message body "
            f"(received 0 bytes, expected {self._expected})"
        )
        yield b""  # pragma: no cover - makes this a generator


def transport_error(fault: FaultSpec, request: httpx2.Request, *, content_type: str) -> httpx2.Response:
    """Raise (or return the broken response for) one transport fault, as httpx would see it."""
    kind = fault.kind
    if kind == "connect_timeout":
        raise httpx2.ConnectTimeout("timed out connecting (injected connect_timeout)", request=request)
    if kind in ("read_timeout", "stall"):
        raise httpx2.ReadTimeout(f"timed out reading (injected {kind})", request=request)
    if kind == "reset_before_headers":
        raise httpx2.RemoteProtocolError("Server disconnected without sending a response.", request=request)
    if kind == "reset_after_headers":
        return httpx2.Response(
            200,
            headers={"content-type": content_type, "content-length": "100"},
            stream=_CutBody(100),
            request=request,
        )
    raise ValueError(f"{kind!r} is not a transport fault; the simulator answers it")


class FaultInjectingTransport(httpx2.BaseTransport):
    """Wraps the real transport; scripted transport faults fire here, everything else passes."""

    def __init__(
        self,
        script: SimScript,
        *,
        inner: httpx2.BaseTransport | None = None,
        counter: FaultCounter | None = None,
    ) -> None:
        self._script = script
        self._inner = inner if inner is not None else httpx2.HTTPTransport()
        self.counter = counter if counter is not None else FaultCounter()
        self.injected: list[tuple[str, int, str]] = []  # (conversation, turn, kind), in order

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            body = json.loads(request.read())
        except ValueError:
            body = None
        chosen = turn_for(self._script, request.url.path, body) if isinstance(body, Mapping) else None
        if chosen is not None:
            turn, _wire = chosen
            fault = turn.spec.fault
            if fault is not None and fault.kind in TRANSPORT_FAULTS and self.counter.take(turn):
                self.injected.append((turn.conversation, turn.index, fault.kind))
                streamed = bool(body.get("stream")) if isinstance(body, Mapping) else False
                content_type = "text/event-stream; charset=utf-8" if streamed else "application/json"
                return transport_error(fault, request, content_type=content_type)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()
