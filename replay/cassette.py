"""Provider cassettes: vcrpy, scrubbed, versioned, matched by canonical request digest.

* Match on method + path + canonical JSON body (a changed prompt never gets the old answer).
* An index from request digest to interactions replaces vcrpy's linear scan over every
  recorded interaction (which also formats a debug string per comparison).
* Requests keep only method, a fixed provider URI, content type and the canonical body;
  responses keep status, content type and the body passed through the harness redactor.
* Our own app's in-process traffic (``testserver``) is never recorded.
* A miss in replay raises :class:`CassetteMissSignal` (a ``BaseException``, so neither the SDK
  nor the harness's retry layer can turn it into "Connection error."), naming the request and
  the nearest recorded one.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from vcr.cassette import Cassette
from vcr.record_mode import RecordMode
from vcr.request import Request

from harness.canonical import digest, dumps_canonical
from harness.redaction import redact, redact_data
from harness.secret_shape import redact_tool_calls_in
from replay.errors import FormatVersionError, ScenarioError

CASSETTE_FORMAT_VERSION = 1
PROVIDER_ORIGIN = "https://provider.sim"
APP_HOSTS = frozenset({"testserver"})
# retry-after(-ms) are kept so a replayed 429 asks for the same wait the recorded one did.
KEPT_RESPONSE_HEADERS = frozenset({"content-type", "retry-after", "retry-after-ms"})


class CassetteMissSignal(BaseException):
    """Replay met an unrecorded request. BaseException on purpose: nothing may swallow it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _body_text(body: bytes | str | None) -> str:
    if body is None:
        return ""
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else body


def _canonical_body(body: bytes | str | None) -> str:
    text = _body_text(body)
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return text


def request_key(method: str, path: str, body: bytes | str | None) -> str:
    """The digest two requests must share to match."""
    return digest([method.upper(), path, _canonical_body(body)])


def scrub_request(request: Request) -> Request | None:
    """Drop our app's traffic; keep method, fixed origin + path, content type and canonical body."""
    parts = urlsplit(request.uri)
    if parts.hostname in APP_HOSTS:
        return None
    raw = request.body if isinstance(request.body, bytes) else _body_text(request.body).encode("utf-8")
    body = _scrubbed_body(raw)
    return Request(
        request.method, f"{PROVIDER_ORIGIN}{parts.path}", body, {"content-type": "application/json"}
    )


@functools.lru_cache(maxsize=4096)
def _scrubbed_body(raw: bytes) -> bytes:
    # vcrpy scrubs the same request up to three times per call; the redactor is the costly part.
    body = _canonical_body(raw)
    try:
        body = json.dumps(
            redact_data(redact_tool_calls_in(json.loads(body))),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
    except ValueError:
        body = redact(body)
    return body.encode("utf-8")


@functools.lru_cache(maxsize=4096)
def _request_key_cached(method: str, path: str, body: bytes | str | None) -> str:
    return request_key(method, path, body)


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Keep status, content type and a redacted body; drop ids, dates, org/project, cookies."""
    headers = {k: v for k, v in response.get("headers", {}).items() if k.lower() in KEPT_RESPONSE_HEADERS}
    raw = response.get("body", {}).get("string", b"")
    text = _body_text(raw)
    try:
        # tool-call arguments also by shape: a bare secret the model sent is never recorded
        text = json.dumps(
            redact_data(redact_tool_calls_in(json.loads(text))), ensure_ascii=False, separators=(",", ":")
        )
    except ValueError:
        text = redact(text)
    return {"status": response["status"], "headers": headers, "body": {"string": text.encode("utf-8")}}


class _Serializer:
    """vcrpy's YAML, wrapped with our format version (checked on load)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def serialize(self, cassette_dict: dict[str, Any]) -> str:
        data = {"harness_cassette_format": CASSETTE_FORMAT_VERSION, **cassette_dict}
        for interaction in data.get("interactions", []):
            interaction.get("request", {}).pop("headers", None)
        return yaml.safe_dump(data, sort_keys=True, allow_unicode=True, width=100)

    def deserialize(self, text: str) -> dict[str, Any]:
        data = _parse_cassette(self.path, text)
        version = data.pop("harness_cassette_format", None)
        if version != CASSETTE_FORMAT_VERSION:
            raise FormatVersionError(
                f"{self.path}: cassette format {version!r} is not {CASSETTE_FORMAT_VERSION}; "
                f"re-record with `harness-replay record {self.path.stem}`"
            )
        for interaction in data.get("interactions", []):
            interaction["request"].setdefault("headers", {})
        return dict(data)


def _parse_cassette(path: Path, text: str) -> dict[str, Any]:
    """The cassette's mapping; a syntax error or a wrong shape names the file and the position."""
    redo = f"fix it (a git conflict marker?) or re-record with `harness-replay record {path.stem}`"
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ScenarioError(f"{path}: cassette is not valid YAML{where} ({problem}); {redo}") from None
    interactions = data.get("interactions", []) if isinstance(data, dict) else None
    if not isinstance(interactions, list) or not all(
        isinstance(i, dict) and isinstance(i.get("request"), dict) and isinstance(i.get("response"), dict)
        for i in interactions
    ):
        raise ScenarioError(
            f"{path}: not a cassette (expected a mapping with a list of request/response "
            f"`interactions`); {redo}"
        )
    return data


class IndexedCassette(Cassette):  # type: ignore[misc]
    """A vcrpy cassette that finds interactions by request digest instead of scanning."""

    def _key(self, request: Request) -> str:
        return _request_key_cached(request.method, urlsplit(request.uri).path, request.body)

    def append(self, request: Request, response: dict[str, Any]) -> None:
        before = len(self.data)
        super().append(request, response)
        if len(self.data) > before:
            index: dict[str, list[int]] = self.__dict__.setdefault("_by_key", {})
            stored = self.data[-1][0]
            index.setdefault(self._key(stored), []).append(len(self.data) - 1)

    def _responses(self, request: Request) -> Iterator[tuple[int, dict[str, Any]]]:
        request = self._before_record_request(request)
        if not request:
            return
        for i in self.__dict__.get("_by_key", {}).get(self._key(request), ()):
            yield i, self.data[i][1]

    def can_play_response_for(self, request: Request) -> bool:
        scrubbed = self._before_record_request(request)
        if not scrubbed or self.record_mode == RecordMode.ALL:  # recording always asks the provider
            return False
        if request in self:
            return True
        if self.write_protected:
            return self._diverge(scrubbed)
        return False

    def _diverge(self, request: Request) -> bool:
        """A miss: keep replaying by position so the trace diff can localise the change.

        The miss is remembered and makes the scenario a regression; it never passes.
        Without a positional counterpart the miss is fatal (:class:`CassetteMissSignal`).
        """
        path = urlsplit(request.uri).path
        for i, (stored, _) in enumerate(self.data):
            if (
                self.play_counts[i] == 0
                and stored.method == request.method
                and urlsplit(stored.uri).path == path
            ):
                self.__dict__.setdefault("_fallback", {})[self._key(request)] = i
                self.__dict__.setdefault("misses", []).append(self._miss_message(request))
                return True
        raise CassetteMissSignal(self._miss_message(request))

    def play_response(self, request: Request) -> Any:
        fallback = self.__dict__.get("_fallback", {}).pop(
            self._key(self._before_record_request(request)), None
        )
        if fallback is None:
            return super().play_response(request)
        self.play_counts[fallback] += 1
        return self.data[fallback][1]

    def _miss_message(self, request: Request) -> str:
        path = urlsplit(request.uri).path
        wanted = _pretty(request.body)
        same_route = [r for r, _ in self.data if r.method == request.method and urlsplit(r.uri).path == path]
        lines = [f"the cassette {self._path} has no recorded answer for {request.method} {path}"]
        if not same_route:
            lines.append(f"it holds no {request.method} {path} at all ({len(self.data)} interaction(s))")
        else:
            nearest = max(
                same_route,
                key=lambda r: difflib.SequenceMatcher(None, _pretty(r.body), wanted, autojunk=False).ratio(),
            )
            diff = difflib.unified_diff(
                _pretty(nearest.body).splitlines(),
                wanted.splitlines(),
                "nearest recorded request",
                "request made now",
                lineterm="",
                n=2,
            )
            lines.append("diff against the nearest recorded request:")
            lines.extend(list(diff)[:60])
        lines.append("(replay continued with the recorded answers in order, to show the trace diff)")
        lines.append("if the change is intended, re-record: harness-replay record <scenario>")
        return "\n".join(lines)


def _pretty(body: bytes | str | None) -> str:
    text = _canonical_body(body)
    try:
        return dumps_canonical(json.loads(text))
    except ValueError:
        return text


@contextmanager
def use_cassette(path: Path, *, record: bool, mode: RecordMode | None = None) -> Iterator[IndexedCassette]:
    """Record (overwrite) or replay (read-only, misses raise) the cassette at ``path``.

    ``mode`` overrides vcrpy's record mode (``new_episodes``: replay what is there, record the rest).
    """
    serializer = _Serializer(path)
    if not record and not path.exists():
        raise FileNotFoundError(path)
    with IndexedCassette.use(
        path=str(path),
        serializer=serializer,
        record_mode=mode or (RecordMode.ALL if record else RecordMode.NONE),
        before_record_request=scrub_request,
        before_record_response=scrub_response,
        match_on=(),
        allow_playback_repeats=False,
    ) as cassette:
        yield cassette


def empty_cassette_text() -> str:
    return yaml.safe_dump(
        {"harness_cassette_format": CASSETTE_FORMAT_VERSION, "interactions": [], "version": 1}
    )
