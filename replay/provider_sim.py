"""A loopback HTTP server speaking OpenAI Chat Completions and Anthropic Messages, from a script.

Test infrastructure only (the harness never imports it): recording cassettes, and faults
a cassette cannot hold (status errors, delays, malformed bodies, streams cut mid-way).

``POST /v1/chat/completions`` (OpenAI) and ``POST /v1/messages`` (Anthropic, JSON or named SSE
events, :mod:`replay.sim.anthropic_wire`) answers are a pure function of the request and the script
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
event) cut in half. ``fault.kind`` selects the rest of the catalogue (timeouts, resets, empty
body, stream cut, error event, stall: :class:`replay.sim_script.FaultSpec`). No ``Date`` header
and no wall clock: equal requests get equal bytes.

Run it alone with ``python -m replay.provider_sim --script FILE [--host H] [--port P]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import signal
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, cast

from replay._sim_wire import (
    ApiError,
    Turn,
    fault_error,
    request_digest,
    select_turn,
    validate_chat_request,
)
from replay.sim import anthropic_wire
from replay.sim.faults import FaultCounter
from replay.sim.streaming import StreamingHandler, dumps
from replay.sim_script import (
    STREAM_FAULTS,
    TRANSPORT_FAULTS,
    SimScript,
    SimScriptError,
    load_script,
)

__all__ = [
    "MAX_BODY_BYTES",
    "RecordedRequest",
    "SimulatorHandle",
    "main",
    "start_simulator",
    "validate_chat_request",
]

MAX_BODY_BYTES = 16 * 1024 * 1024
_CHAT_PATH = "/v1/chat/completions"
_PATHS = {_CHAT_PATH: "openai", anthropic_wire.MESSAGES_PATH: "anthropic"}
_HIDDEN_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "cookie"})


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


# --- the server ---------------------------------------------------------------------------


class _SimServer(ThreadingHTTPServer):
    """The HTTP server plus the simulator's shared, lock-guarded state."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], script: SimScript, *, transport_faults: bool) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.script = script
        self.transport_faults = transport_faults
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.faults = FaultCounter()
        self.log: list[RecordedRequest] = []
        self.connections: set[socket.socket] = set()

    def take_fault(self, turn: Turn) -> int | None:
        """Count one failure of ``turn`` if its fault is still armed (and ours to inject)."""
        fault = turn.spec.fault
        if fault is None or (fault.kind in TRANSPORT_FAULTS and not self.transport_faults):
            return None  # a FaultInjectingTransport in front of us injects these
        return self.faults.take(turn)


class _Handler(StreamingHandler):
    protocol_version = "HTTP/1.1"
    server_version = "provider-sim"
    sys_version = ""
    timeout = 60  # idle keep-alive connections release their thread

    @property
    def sim(self) -> _SimServer:
        return cast(_SimServer, self.server)

    def _stopping(self) -> threading.Event:
        return self.sim.stopping

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

    def _record(self, body: Any, status: int, turn: Turn | None = None) -> None:
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
        path = self.path.split("?")[0]
        wire = _PATHS.get(path, "openai")
        try:
            raw = self._read_body()
            request_id = hashlib.sha256(raw).hexdigest()
            if path not in _PATHS:
                raise ApiError(404, f"Invalid URL ({self.command} {self.path})", code="unknown_url")
            if self.command != "POST":
                raise ApiError(405, f"Method {self.command} not allowed on {path}; use POST")
            self._check_auth(wire)
            body = _parse_json(raw)
            request_id = request_digest(body)
            if wire == "anthropic":
                anthropic_wire.validate_messages_request(body)
                turn = select_turn(self.sim.script, anthropic_wire.neutral_body(body), request_id)
            else:
                validate_chat_request(body)
                turn = select_turn(self.sim.script, body, request_id)
        except ApiError as err:
            self._record(body, err.status)
            self._send_error(err, request_id, wire)
            return
        self._answer(turn, wire, body)

    def _send_error(self, err: ApiError, request_id: str, wire: str) -> None:
        payload = anthropic_wire.error_payload(err) if wire == "anthropic" else err.payload
        self._send(err.status, dumps(payload), request_id, err.headers)

    def _read_body(self) -> bytes:
        length = self.headers.get("content-length")
        if length is None:
            if self.command in ("GET", "DELETE"):
                return b""
            self.close_connection = True
            raise ApiError(411, "A Content-Length header is required.", code="length_required")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(413, f"Request body must be at most {MAX_BODY_BYTES} bytes.")
        return self.rfile.read(int(length))

    def _check_auth(self, wire: str) -> None:
        if wire == "anthropic":
            scheme, _, token = (self.headers.get("authorization") or "").partition(" ")
            bearer = scheme.lower() == "bearer" and token.strip()
            if not (self.headers.get("x-api-key") or "").strip() and not bearer:
                raise ApiError(
                    401, "x-api-key or Authorization: Bearer is required (the simulator accepts any key)"
                )
            if not self.headers.get("anthropic-version"):
                raise ApiError(400, "anthropic-version header is required")
            return
        scheme, _, key = (self.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            message = (
                "You didn't provide an API key. Provide it in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY); the simulator accepts any key."
            )
            raise ApiError(401, message, code="invalid_api_key")

    def _answer(self, turn: Turn, wire: str, raw_body: Any) -> None:
        spec = turn.spec
        if spec.delay_ms and self.sim.stopping.wait(spec.delay_ms / 1000):
            self._abort()
            return
        streamed = bool(turn.body.get("stream"))
        attempt = self.sim.take_fault(turn)
        fault = spec.fault if attempt is not None else None
        if fault is not None and fault.kind in STREAM_FAULTS and not streamed:
            err = ApiError(
                422,
                f"provider-sim: fault kind {fault.kind!r} needs a streamed request (route `stream: true`)",
                type="simulator_error",
                code="fault_needs_stream",
            )
            self._record(raw_body, 422, turn)
            self._send_error(err, turn.digest, wire)
            return
        if fault is not None and fault.kind == "status":
            err = fault_error(turn, fault, attempt or 1)
            self._record(raw_body, err.status, turn)
            self._send_error(err, turn.digest, wire)
            return
        self._record(raw_body, 200, turn)
        if fault is not None and self._connection_fault(fault):
            return
        if streamed:
            self._stream(turn, wire, fault)
            return
        if wire == "anthropic":
            answer = anthropic_wire.message(turn, model=raw_body["model"])
        else:
            answer = turn.completion()
        payload = dumps(answer)
        if spec.malformed or (fault is not None and fault.kind == "malformed"):
            payload = payload[: len(payload) // 2]
        if fault is not None and fault.kind == "empty_body":
            payload = b""
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
        raise ApiError(400, message) from exc




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
    def origin(self) -> str:
        """The bare origin, the Anthropic ``base_url`` (the SDK adds ``/v1/messages``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

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
        self._server.faults.clear()

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
    script: SimScript | Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    transport_faults: bool = True,
) -> SimulatorHandle:
    """Serve ``script`` on ``host:port`` (0 picks a free port) from a background thread.

    ``transport_faults=False`` leaves faults that have no response (timeouts, resets) to a
    :class:`replay.sim.faults.FaultInjectingTransport` in front (the replay engine's setup).
    """
    loaded = script if isinstance(script, SimScript) else load_script(script)
    server = _SimServer((host, port), loaded, transport_faults=transport_faults)
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
        description="Serve OpenAI Chat Completions and Anthropic Messages on loopback from a script.",
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
