"""The one secret redactor: finds secrets in text and data, replaces them with ``[REDACTED:<type>]``.

Logs, audit payloads, artifacts, stored prompts, cassettes and goldens all scrub through
this module, so a rule added here protects every one of them. Pure: no I/O imports.

The rules (``harness._redaction_rules``) are written from the publicly documented token
formats (the gitleaks and detect-secrets rule sets describe them). They run in priority order;
overlapping finds are merged into one span typed by the most specific rule, so ``api_key="sk-proj-..."``
becomes ``api_key="[REDACTED:openai_api_key]"`` rather than a generic assignment.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from harness._redaction_rules import RULES as _RULES

__all__ = [
    "SECRET_FIELD",
    "SECRET_TYPES",
    "SecretFinding",
    "find_secrets",
    "is_secret_key",
    "redact",
    "redact_data",
    "redact_event",
    "replace_findings",
    "scan_text",
]

SECRET_FIELD: Final = "secret_field"  # noqa: S105 -- a marker type name, not a credential
"""The type in ``[REDACTED:secret_field]``: a value stored under a secret-ish key."""

_MARKER: Final = re.compile(r"\[REDACTED:[a-z0-9_]+\]")
# A marker's own words can bring a neighbour within a keyword rule's reach (the marker
# for a PEM block says "private_key"), so redact() repeats until nothing is found. Each
# pass shrinks the unredacted text and real inputs settle in two; the bound only guards
# against a rule bug looping forever.
_MAX_PASSES: Final = 8


@dataclass(frozen=True, slots=True)
class SecretFinding:
    """A secret of kind ``type`` at ``text[start:end]``."""

    type: str
    start: int
    end: int



_RULES_BY_HINT: Final[dict[str, tuple[int, ...]]] = {
    hint: tuple(i for i, rule in enumerate(_RULES) if hint in rule.hints)
    for hint in sorted({hint for rule in _RULES for hint in rule.hints})
}
_FOLDED_HINTS: Final = tuple(hint for hint in _RULES_BY_HINT if hint.islower())
_EXACT_HINTS: Final = tuple(hint for hint in _RULES_BY_HINT if not hint.islower())
_HINT_GATE: Final = re.compile("|".join(re.escape(hint.lower()) for hint in _RULES_BY_HINT))

SECRET_TYPES: Final[frozenset[str]] = frozenset({rule.type for rule in _RULES} | {SECRET_FIELD})
"""Every type that can appear in ``[REDACTED:<type>]``."""


def find_secrets(text: str) -> list[SecretFinding]:
    """Secrets in ``text``, sorted by position; ``[REDACTED:...]`` markers are not reported."""
    if not text:
        return []
    lowered = text.lower()  # used only for the cheap hint checks, never for offsets
    if _HINT_GATE.search(lowered) is None:
        return []  # the common case: one regex pass over an ordinary string
    triggered: set[int] = set()
    for hint in _FOLDED_HINTS:
        if hint in lowered:
            triggered.update(_RULES_BY_HINT[hint])
    for hint in _EXACT_HINTS:
        if hint in text:
            triggered.update(_RULES_BY_HINT[hint])
    raw: list[tuple[int, int, int]] = []  # (start, end, priority)
    markers: list[tuple[int, int]] | None = None
    for priority in sorted(triggered):
        for start, end in _RULES[priority].spans(text):
            if markers is None:
                markers = [m.span() for m in _MARKER.finditer(text)]
            if start == end or _inside_marker(markers, start, end):
                continue
            raw.append((start, end, priority))
    return _merge(raw)


def _inside_marker(markers: list[tuple[int, int]], start: int, end: int) -> bool:
    # markers are sorted and disjoint: only the last one starting at or before `start` can hold it
    i = bisect.bisect_right(markers, start, key=lambda marker: marker[0]) - 1
    return i >= 0 and end <= markers[i][1]


def _merge(raw: list[tuple[int, int, int]]) -> list[SecretFinding]:
    """Union overlapping spans; each union takes the type of its highest-priority rule."""
    merged: list[SecretFinding] = []
    group_start = group_end = group_priority = -1
    for start, end, priority in sorted(raw):
        if start < group_end:
            group_end = max(group_end, end)
            group_priority = min(group_priority, priority)
            continue
        if group_end != -1:
            merged.append(SecretFinding(_RULES[group_priority].type, group_start, group_end))
        group_start, group_end, group_priority = start, end, priority
    if group_end != -1:
        merged.append(SecretFinding(_RULES[group_priority].type, group_start, group_end))
    return merged


def scan_text(text: str) -> list[str]:
    """Secret types found in ``text``, each once, in order of first appearance."""
    return list(dict.fromkeys(finding.type for finding in find_secrets(text)))


def replace_findings(text: str, findings: list[SecretFinding], *, prefix: str = "[REDACTED:") -> str:
    """``text`` with each finding's span replaced by ``<prefix><type>]`` (findings in order, disjoint)."""
    parts: list[str] = []
    cursor = 0
    for finding in findings:
        parts.append(text[cursor : finding.start])
        parts.append(f"{prefix}{finding.type}]")
        cursor = finding.end
    parts.append(text[cursor:])
    return "".join(parts)


def redact(text: str) -> str:
    """``text`` with every secret replaced by ``[REDACTED:<type>]``; idempotent, deterministic."""
    for _ in range(_MAX_PASSES):
        findings = find_secrets(text)
        if not findings:
            return text
        text = replace_findings(text, findings)
    return text


# The brief's key vocabulary; a key matches when, normalised to snake_case, it equals a
# name or ends with ``_<name>`` (db_password, aws_secret_access_key, X-Api-Key) -- but
# never max_tokens or token_count.
_SECRET_KEY_NAMES: Final = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "secret_key",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "private_key",
        "client_secret",
        "access_key",
        "credentials",
        "cookie",
        "set_cookie",
        "x_api_key",
    }
)
_CAMEL_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``Authorization``, ``db_password``, ``apiKey``)."""
    normalised = _CAMEL_BOUNDARY.sub("_", key).lower().replace("-", "_")
    return any(normalised == name or normalised.endswith("_" + name) for name in _SECRET_KEY_NAMES)


def _has_content(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, str | bytes | Mapping | list | tuple):
        return len(value) > 0
    return True


def _redact_value(value: Any, *, stringify_unknown: bool) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping | list | tuple):
        return _redact_container(value, stringify_unknown=stringify_unknown)
    if isinstance(value, set | frozenset | bytes | bytearray):
        return _redact_set_or_bytes(value, stringify_unknown=stringify_unknown)
    if stringify_unknown:
        # The JSON renderer would repr() it anyway; do it here so the repr is scrubbed too.
        return redact(repr(value))
    return value


def _redact_set_or_bytes(
    value: set[Any] | frozenset[Any] | bytes | bytearray, *, stringify_unknown: bool
) -> Any:
    if isinstance(value, set | frozenset):
        # sorted by repr so a log line does not depend on hash order
        items = sorted((_redact_value(v, stringify_unknown=stringify_unknown) for v in value), key=repr)
        return items if stringify_unknown else type(value)(items)
    text = bytes(value).decode("utf-8", errors="replace")
    clean = redact(text)
    if stringify_unknown:
        return clean
    return value if clean == text else clean.encode("utf-8")


def _redact_container(
    value: Mapping[Any, Any] | list[Any] | tuple[Any, ...], *, stringify_unknown: bool
) -> Any:
    if isinstance(value, list):
        return [_redact_value(item, stringify_unknown=stringify_unknown) for item in value]
    if isinstance(value, tuple):
        return tuple(_redact_value(item, stringify_unknown=stringify_unknown) for item in value)
    out: dict[Any, Any] = {}
    for key, item in value.items():
        new_key = _redact_key(key, stringify_unknown=stringify_unknown)
        if isinstance(key, str) and is_secret_key(key) and _has_content(item):
            out[new_key] = f"[REDACTED:{SECRET_FIELD}]"
        else:
            out[new_key] = _redact_value(item, stringify_unknown=stringify_unknown)
    return out


def _redact_key(key: Any, *, stringify_unknown: bool) -> Any:
    """A mapping key is data too: ``{"AKIA...": 1}`` must not keep the key id."""
    if isinstance(key, str):
        return redact(key)
    if key is None or isinstance(key, bool | int | float):
        return key
    if isinstance(key, tuple):
        return tuple(_redact_key(k, stringify_unknown=stringify_unknown) for k in key)
    if isinstance(key, bytes):
        clean = redact(key.decode("utf-8", errors="replace"))
        return clean if stringify_unknown else clean.encode("utf-8")
    return redact(repr(key)) if stringify_unknown else key


def redact_data(value: Any) -> Any:
    """A redacted copy of JSON-like data: strings scrubbed, values under secret keys replaced."""
    return _redact_value(value, stringify_unknown=False)


def redact_event(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the event dict redacted; non-JSON objects become scrubbed reprs."""
    redacted: dict[str, Any] = _redact_value(event_dict, stringify_unknown=True)
    return redacted
