"""The answer-writing half of the simulator's request handler: SSE streams and faults without a response.

Split from :mod:`replay.provider_sim` (the server, dispatch and public handle) so each stays
small; the handler there subclasses :class:`StreamingHandler` and supplies ``_stopping``
and ``_common_headers``.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from replay._sim_wire import Turn
from replay.sim import anthropic_wire
from replay.sim_script import STREAM_FAULTS, FaultSpec


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, the bytes every simulator answer is made of."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sse(name: str, data: Any) -> bytes:
    """One named server-sent event (the Anthropic framing)."""
    return f"event: {name}\n".encode() + b"data: " + dumps(data) + b"\n\n"


class StreamingHandler(BaseHTTPRequestHandler):
    """Writes streamed answers and acts out connection faults; the subclass knows the server."""

    def _stopping(self) -> threading.Event:
        raise NotImplementedError

    def _common_headers(self, request_id: str, content_type: str) -> None:
        raise NotImplementedError

    def _connection_fault(self, fault: FaultSpec) -> bool:
        """Act out a fault that leaves no response; whether one was acted out."""
        kind = fault.kind
        if kind == "connect_timeout":
            # No loopback server can make a connect time out on cue; scenarios inject it at the
            # transport (replay.sim.faults.FaultInjectingTransport). Here: the nearest thing.
            kind = "read_timeout"
        if kind == "read_timeout":
            self._stopping().wait(fault.stall_ms / 1000)
            self._abort()
            return True
        if kind == "reset_before_headers":
            self._abort()
            return True
        if kind == "reset_after_headers":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", "100")
            self.end_headers()
            self._abort()
            return True
        return False

    def _stream(self, turn: Turn, wire: str, fault: FaultSpec | None) -> None:  # noqa: PLR0912 - one branch per fault
        spec = turn.spec
        self.send_response(200)
        self._common_headers(turn.digest, "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        if wire == "anthropic":
            model = str(turn.body["model"])
            events = [sse(name, data) for name, data in anthropic_wire.events(turn, model=model)]
            final: bytes | None = None  # message_stop is the last event itself
        else:
            events = [b"data: " + dumps(chunk) + b"\n\n" for chunk in turn.chunks()]
            final = b"data: [DONE]\n\n"
        if spec.malformed or (fault is not None and fault.kind == "malformed"):
            self._write_chunk(events[0][: len(events[0]) // 2] + b"\n\n")
            self._write_chunk(b"")
            return
        cut = fault.after if fault is not None and fault.kind in STREAM_FAULTS else None
        for sent, event in enumerate(events):
            if cut is not None and sent >= cut:
                break
            if spec.fail_mid_stream_after is not None and sent >= spec.fail_mid_stream_after:
                self._abort()
                return
            if sent and spec.chunk_delay_ms and self._stopping().wait(spec.chunk_delay_ms / 1000):
                self._abort()
                return
            self._write_chunk(event)
        if spec.fail_mid_stream_after is not None:
            self._abort()
            return
        if fault is not None and fault.kind == "stall":
            self._stopping().wait(fault.stall_ms / 1000)
            self._abort()
            return
        if fault is not None and fault.kind == "error_event":
            message = fault.message or f"provider-sim injected an error event after {fault.after} event(s)"
            if wire == "anthropic":
                name, data = anthropic_wire.error_event(message, kind=fault.type or "overloaded_error")
                self._write_chunk(sse(name, data))
            else:
                error = {"message": message, "type": fault.type or "server_error", "code": None}
                self._write_chunk(b"data: " + dumps({"error": error}) + b"\n\n")
        elif cut is None and final is not None:
            self._write_chunk(final)
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
