"""Shape detector for values that are nothing but a secret, and its use on model tool-call arguments.

The text redactor finds secrets by prefix or by a keyword nearby. A model can pass a bare
credential as a whole argument value (``read_file {"path": "<40 random base62 chars>"}``):
no prefix, no keyword. Such a value is judged by its shape alone: one token of secret-like
length, drawn from a token alphabet, with the entropy and the class switching of random
text. Hex digests (sha1/sha256), UUIDs, our own ids (``run_<hex>``) and file names made of
words stay untouched. Pure: no I/O imports.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from typing import Any, Final

from harness.redaction import redact, redact_data

__all__ = [
    "SECRET_VALUE",
    "looks_like_secret_value",
    "redact_tool_arguments",
    "redact_tool_call",
    "redact_tool_calls_in",
]

SECRET_VALUE: Final = "secret_value"  # noqa: S105 -- a marker type name, not a credential
"""The type in ``[REDACTED:secret_value]``: a tool-argument value that is a bare secret by shape."""

_MIN_LENGTH: Final = 20
_MAX_LENGTH: Final = 512
_TOKEN: Final = re.compile(r"[A-Za-z0-9+/_=~-]+")
_HEX_OR_UUID: Final = re.compile(r"[0-9a-fA-F-]+")
_OUR_ID: Final = re.compile(r"[a-z]+_[0-9a-f]+")
_SEGMENTS: Final = re.compile(r"[/\\.]")
# Names are made of words: runs of three or more lower-case letters, maybe capitalised, cover
# most of SalesForecastNorthRegion2025Q1 or customer_feedback_v2; in random base62 only a
# small share of characters fall in such runs. Thresholds from simulation (bench-style
# sampling, not tuned to a test corpus): >95% of random base62/base64url tokens of 20+
# characters are caught; lower-case-and-digit tokens are caught less often (a documented gap).
_WORD: Final = re.compile(r"[A-Z]?[a-z]{3,}")
_MAX_WORD_COVERAGE: Final = 0.45
_MIN_SWITCH_RATE: Final = 0.3
_ENTROPY_FRACTION: Final = 0.78


def _char_class(c: str) -> int:
    if c.islower():
        return 0
    if c.isupper():
        return 1
    if c.isdigit():
        return 2
    return 3


def _random_looking(token: str) -> bool:
    n = len(token)
    if n < _MIN_LENGTH or n > _MAX_LENGTH:
        return False
    if _HEX_OR_UUID.fullmatch(token) or _OUR_ID.fullmatch(token):
        return False
    if not any(c.isdigit() for c in token) or not any(c.isalpha() for c in token):
        return False
    classes = [_char_class(c) for c in token]
    switches = sum(1 for a, b in itertools.pairwise(classes) if a != b)
    if switches / (n - 1) < _MIN_SWITCH_RATE:
        return False
    if sum(len(m) for m in _WORD.findall(token)) / n > _MAX_WORD_COVERAGE:
        return False
    counts = Counter(token)
    entropy = -sum(k / n * math.log2(k / n) for k in counts.values())
    return entropy >= _ENTROPY_FRACTION * math.log2(min(n, 64))


def looks_like_secret_value(value: str) -> bool:
    """Whether ``value`` as a whole (or one segment of a path) is a bare high-entropy token."""
    text = value.strip()
    if not text or any(c.isspace() for c in text):
        return False
    if _TOKEN.fullmatch(text) and _random_looking(text.rstrip("=")):
        return True
    # a path or file name: judge each part between separators, so words and extensions pass
    return any(_random_looking(part) for part in _SEGMENTS.split(text) if _TOKEN.fullmatch(part))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        clean = redact(value)
        return f"[REDACTED:{SECRET_VALUE}]" if looks_like_secret_value(clean) else clean
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def redact_tool_arguments(arguments: str) -> str:
    """A model's JSON argument string with secrets and secret-shaped values redacted.

    Unchanged input comes back byte for byte, so clean calls keep their recorded form.
    """
    try:
        parsed = json.loads(arguments)
    except (json.JSONDecodeError, RecursionError):
        return redact(arguments)
    clean = _scrub(redact_data(parsed))
    if clean == parsed:
        return arguments
    return json.dumps(clean, ensure_ascii=False)


def redact_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """A tool call in OpenAI message shape with its arguments passed through :func:`redact_tool_arguments`."""
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    return {**call, "function": {**function, "arguments": redact_tool_arguments(function["arguments"])}}


def redact_tool_calls_in(data: Any) -> Any:
    """``data`` (a provider request or response body) with every tool call's arguments redacted.

    Finds OpenAI-shaped calls (``{"function": {"arguments": "<json>"}}``) and Anthropic
    ``tool_use`` blocks (``{"type": "tool_use", "input": {...}}``) at any depth.
    """
    if isinstance(data, list):
        return [redact_tool_calls_in(item) for item in data]
    if not isinstance(data, dict):
        return data
    if data.get("type") == "tool_use" and isinstance(data.get("input"), dict):
        return {**data, "input": _scrub(redact_data(data["input"]))}
    out = {k: redact_tool_calls_in(v) for k, v in data.items()}
    return redact_tool_call(out) if isinstance(out.get("function"), dict) else out
