"""The one secret redactor: finds secrets in text and data, replaces them with ``[REDACTED:<type>]``.

Logs, audit payloads, artifacts, stored prompts, cassettes and goldens all scrub through
this module, so a rule added here protects every one of them. Pure: no I/O imports.

Rules are written from the publicly documented token formats (the gitleaks and
detect-secrets rule sets describe them). They run in priority order; overlapping finds
are merged into one span typed by the most specific rule, so ``api_key="sk-proj-..."``
becomes ``api_key="[REDACTED:openai_api_key]"`` rather than a generic assignment.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "SECRET_FIELD",
    "SECRET_TYPES",
    "SecretFinding",
    "find_secrets",
    "is_secret_key",
    "redact",
    "redact_data",
    "redact_event",
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


@dataclass(frozen=True, slots=True)
class _PatternRule:
    """A secret matched by one regex; the ``secret`` group (or the whole match) is redacted."""

    type: str
    pattern: re.Pattern[str]
    # the rule is skipped unless one of these occurs; an all-lower-case hint is matched
    # case-insensitively, any other exactly
    hints: tuple[str, ...]

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        for match in self.pattern.finditer(text):
            yield _secret_span(match)


@dataclass(frozen=True, slots=True)
class _NearKeywordRule:
    """A candidate token accepted only shortly after a keyword on the same line."""

    type: str
    keyword: re.Pattern[str]
    candidate: re.Pattern[str]
    accept: Callable[[str], bool]
    hints: tuple[str, ...]
    window: int = 40

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        for kw in self.keyword.finditer(text):
            # Look for token starts only inside the window, so a long line full of
            # keywords stays linear; each candidate then runs to its natural end.
            limit = kw.end() + self.window + 1
            line_end = text.find("\n", kw.end(), limit)
            if line_end != -1:
                limit = line_end
            for start in _TOKEN_START.finditer(text, kw.end(), limit):
                cand = self.candidate.match(text, start.start())
                if cand is not None and self.accept(cand.group()):
                    yield cand.span()


_Rule = _PatternRule | _NearKeywordRule
_TOKEN_START: Final = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]")


def _secret_span(match: re.Match[str]) -> tuple[int, int]:
    # Rules with alternative value syntaxes name their groups secret, secret_b, ...
    for name, value in match.groupdict().items():
        if name.startswith("secret") and value is not None:
            return match.span(name)
    return match.span()


def _shannon_entropy(token: str) -> float:
    counts = Counter(token)
    size = len(token)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


_HEX_ISH: Final = re.compile(r"[0-9a-fA-F-]+")
_OUR_ID: Final = re.compile(r"[a-z]+_[0-9a-f]+")


def _looks_random(token: str) -> bool:
    """High entropy, mixed case and digits; never a hex digest, UUID or a ``run_<hex>`` id."""
    if _HEX_ISH.fullmatch(token) or _OUR_ID.fullmatch(token):
        return False
    has_classes = (
        any(c.islower() for c in token)
        and any(c.isupper() for c in token)
        and any(c.isdigit() for c in token)
    )
    return has_classes and _shannon_entropy(token) >= 3.5


def _looks_like_aws_secret(token: str) -> bool:
    if _HEX_ISH.fullmatch(token):
        return False
    return any(c.islower() for c in token) and any(c.isupper() for c in token)


# Boundaries used instead of \b, which misbehaves next to '-' and '/'.
_START: Final = r"(?<![A-Za-z0-9_-])"
_END: Final = r"(?![A-Za-z0-9_-])"


def _token_rule(type_: str, body: str, *hints: str) -> _PatternRule:
    return _PatternRule(type_, re.compile(_START + body + _END), hints)


# One vocabulary of secret-ish key names for text assignments; is_secret_key() below is
# the structured twin. ``(?<=[a-z0-9])(?=[A-Z])`` lets camelCase keys (clientSecret) match.
_KEY: Final = (
    r"(?:(?<![A-Za-z0-9])|(?<=[a-z0-9])(?=[A-Z]))"
    r"(?i:pass(?:word|wd|phrase)?|secret(?:[_-]?(?:access[_-]?)?key)?|token|api[_-]?key"
    r"|access[_-]?key|private[_-]?key|client[_-]?secret|credentials?|authorization|cookie)"
    r"(?![A-Za-z0-9_])"
)
# ``=``/``:`` as typed, or URL-, HTML- or JSON-escaped (``%3D``, ``&#61;``, ``\u003d``), or ``=>``/``:=``
_ANY_SEP: Final = (
    r"(?:=>|:=|[:=]|%3[AaDd]|&#(?:58|61|x3[AaDd]);|&(?:colon|equals);|\\u003[AaDd])"
)
_EQ_SEP: Final = r"(?:=>|:=|=|%3[Dd]|&#(?:61|x3[Dd]);|&equals;|\\u003[Dd])"
_LINE_VALUE_CHAR: Final = r"(?:\\(?![nrt\"])|[^\r\n\"\\])"
_LINE_START: Final = r"(?:^|(?<=\\n)|(?<=\\r)|(?<=\"))"
_SKIP_EMPTY: Final = r"(?!(?i:null|none|true|false|nil)(?![A-Za-z0-9_]))"
# possessive, so a second pass never folds the scheme into the value
_AUTH_SCHEME: Final = r"(?:(?i:bearer|basic|token|digest)[ \t]+)?+"
_QUOTED_VALUE: Final = (
    r"(?:&(?:quot|#34|#x22);" + _AUTH_SCHEME + r"(?P<secret_d>(?:(?!&(?:quot|#34|#x22);)[^\r\n])+)"
    r"&(?:quot|#34|#x22);"
    r"|\\\"" + _AUTH_SCHEME + r"(?P<secret_c>(?:[^\"\\\r\n]|\\[^\"\r\n])+)\\\""
    r"|\"" + _AUTH_SCHEME + r"(?P<secret>(?:[^\"\\\r\n]|\\.)+)\""
    r"|'" + _AUTH_SCHEME + r"(?P<secret_b>(?:[^'\\\r\n]|\\.)+)')"
)
_BARE_VALUE: Final = _SKIP_EMPTY + r"(?P<secret>[^\s\"'`,;&<>(){}\[\]\\=][^\s\"'`,;&<>(){}\[\]\\]*)"
_HIGH_ENTROPY_CANDIDATE: Final = re.compile(
    r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{20,}={0,2}(?![A-Za-z0-9+/=_-])"
)
_DB_SCHEMES: Final = (
    r"(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver"
    r"|oracle|cockroachdb|clickhouse)(?:\+[a-z0-9]+)?"
)
# user:password@ in a URL; the password may hold '@', so take the last one before the host.
_URL_CREDENTIALS: Final = r"://[^\s:/?#@\"'<>]*:(?P<secret>[^\s/?#\"'<>]+)@"

# stems of every name _KEY accepts (api_key, access_key, private_key all carry one)
_ASSIGNMENT_HINTS: Final = (
    "pass",
    "secret",
    "token",
    "api",
    "access",
    "private",
    "credential",
    "authorization",
    "cookie",
)

# Priority order: the first rule whose span overlaps a merged group names its type.
_RULES: Final[tuple[_Rule, ...]] = (
    _PatternRule(
        "private_key",
        re.compile(
            r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"
            r".*?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----",
            re.DOTALL,
        ),
        ("-----end",),  # without an END line the lazy scan would be quadratic in BEGINs
    ),
    _PatternRule(
        "private_key",
        # A truncated block (no END line, or a paste cut short): the base64 lines that
        # follow, one line break apart (raw or JSON-escaped). A body line must hold an
        # upper-case letter, digit or +/=, so a plain word on the next line is left alone.
        re.compile(
            r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[ \t]*(?:\r?\n|\\r\\n|\\n)[ \t]*(?=[a-z]*[A-Z0-9+/=])[A-Za-z0-9+/=]{8,})*"
        ),
        ("-----begin",),
    ),
    # The payload may be short (``{"a":1}`` is ``eyJhIjoxfQ``) or empty (``{}`` is ``e30``).
    _token_rule("jwt", r"eyJ[A-Za-z0-9_-]{5,}\.(?:ey[A-Za-z0-9_-]{2,}|e30)\.[A-Za-z0-9_-]*", "eyJ"),
    _token_rule("anthropic_api_key", r"sk-ant-[A-Za-z0-9_-]{20,}", "sk-ant-"),
    _token_rule("openai_api_key", r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}", "sk-"),
    _token_rule("github_fine_grained_pat", r"github_pat_[A-Za-z0-9_]{22,}", "github_pat_"),
    _token_rule("github_pat", r"ghp_[A-Za-z0-9]{36,}", "ghp_"),
    _token_rule("github_oauth_token", r"gho_[A-Za-z0-9]{36,}", "gho_"),
    _token_rule("github_user_token", r"ghu_[A-Za-z0-9]{36,}", "ghu_"),
    _token_rule("github_server_token", r"ghs_[A-Za-z0-9]{36,}", "ghs_"),
    _token_rule("github_refresh_token", r"ghr_[A-Za-z0-9]{36,}", "ghr_"),
    _token_rule("gitlab_pat", r"glpat-[A-Za-z0-9_-]{20,}", "glpat-"),
    _PatternRule(
        "slack_webhook",
        re.compile(r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}"),
        ("hooks.slack.com",),
    ),
    _token_rule("slack_token", r"xox[abeoprs]-[A-Za-z0-9-]{10,}", "xox"),
    _token_rule("stripe_secret_key", r"sk_(?:live|test)_[A-Za-z0-9]{16,}", "sk_"),
    _token_rule("stripe_restricted_key", r"rk_(?:live|test)_[A-Za-z0-9]{16,}", "rk_"),
    _token_rule("stripe_publishable_key", r"pk_(?:live|test)_[A-Za-z0-9]{16,}", "pk_"),
    _token_rule("google_api_key", r"AIza[A-Za-z0-9_-]{35}", "AIza"),
    _token_rule("sendgrid_api_key", r"SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{32,64}", "SG."),
    _token_rule("npm_token", r"npm_[A-Za-z0-9]{36}", "npm_"),
    _token_rule("pypi_token", r"pypi-AgE[A-Za-z0-9_-]{50,}", "pypi-"),
    _token_rule("huggingface_token", r"hf_[A-Za-z0-9]{30,}", "hf_"),
    _token_rule("twilio_api_key", r"SK[0-9a-fA-F]{32}", "SK"),
    _PatternRule(
        "aws_access_key_id",
        re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])"),
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
    ),
    _NearKeywordRule(
        "aws_secret_access_key",
        keyword=re.compile(r"(?i:aws|secret)"),
        candidate=re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=_-])"),
        accept=_looks_like_aws_secret,
        hints=("aws", "secret"),
    ),
    _PatternRule(
        "azure_storage_key",
        re.compile(r"(?i:AccountKey|SharedAccessKey)\s*=\s*(?P<secret>[A-Za-z0-9+/]{20,}={0,2})"),
        ("accountkey", "sharedaccesskey"),
    ),
    _PatternRule(
        "database_url",
        re.compile(r"(?<![A-Za-z0-9+.-])(?i:" + _DB_SCHEMES + r")" + _URL_CREDENTIALS),
        ("://",),
    ),
    _PatternRule(
        "basic_auth_url",
        re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*" + _URL_CREDENTIALS),
        ("://",),
    ),
    _PatternRule(
        "bearer_token",
        # a digit is required so prose ("the bearer of bad news") is left alone
        re.compile(
            r"(?<![A-Za-z0-9])(?i:bearer)(?:\s|\\t)+"
            r"(?P<secret>(?=[A-Za-z._~+/-]*[0-9])[A-Za-z0-9._~+/-]{7,}[A-Za-z0-9_~+/-]=*)"
        ),
        ("bearer",),
    ),
    # Generic assignments. A quoted value or ``=`` counts anywhere; an unquoted value after
    # ``:`` only at the start of a line (YAML, headers), so prose like "the token: it
    # expires" is left alone.
    _PatternRule(
        "secret_assignment",
        re.compile(_KEY + r"\\?[\"']?[ \t]*" + _ANY_SEP + r"[ \t]*" + _QUOTED_VALUE),
        _ASSIGNMENT_HINTS,
    ),
    _PatternRule(
        "secret_assignment",
        re.compile(_KEY + r"[\"']?[ \t]*" + _EQ_SEP + r"[ \t]*" + _BARE_VALUE),
        _ASSIGNMENT_HINTS,
    ),
    _PatternRule(
        "secret_assignment",
        re.compile(r"(?<!\S)--?" + _KEY + r"[ \t]+" + _BARE_VALUE),
        _ASSIGNMENT_HINTS,
    ),
    _PatternRule(
        "secret_assignment",
        re.compile(
            # a line starts at a real line break, a JSON-escaped one, or a JSON string's quote
            _LINE_START
            + r"[ \t]*(?:-[ \t]+)?[\"']?[A-Za-z0-9_.-]*?"
            + _KEY
            + r"[\"']?[ \t]*:[ \t]*"
            + _AUTH_SCHEME
            + _SKIP_EMPTY
            # A marker or a quoted value with more after it on the line may hide a second
            # assignment of the same key ("password: [REDACTED:...] then password: x").
            # The value ends at the line's end: a real line break, a JSON-escaped one (\n) or
            # the closing quote of an enclosing JSON string, which must survive.
            + r"(?P<secret>(?:\[REDACTED:[a-z0-9_]+\]|\"[^\"\r\n]*\"|'[^'\r\n]*')[ \t,;]*[^\s,;\"\\]"
            + _LINE_VALUE_CHAR
            + r"*|[^\s\"'|>#&*!{\[\\](?:"
            + _LINE_VALUE_CHAR
            + r"*[^\s\"\\])?)",
            re.MULTILINE,
        ),
        _ASSIGNMENT_HINTS,
    ),
    _PatternRule(
        "secret_assignment",
        # a YAML block scalar (``password: |`` then indented lines): every line deeper than the key
        re.compile(
            r"^(?P<indent>[ \t]*)(?:-[ \t]+)?[\"']?[A-Za-z0-9_.-]*?"
            + _KEY
            + r"[\"']?[ \t]*:[ \t]*[|>][-+0-9]*[ \t]*\r?\n"
            + r"(?P<secret>(?P=indent)[ \t]+\S[^\r\n]*(?:\r?\n(?P=indent)[ \t]+\S[^\r\n]*)*)",
            re.MULTILINE,
        ),
        _ASSIGNMENT_HINTS,
    ),
    _PatternRule(
        "secret_assignment",
        # an XML element named like a secret: <password>...</password>, <db:Password a="1">...
        re.compile(
            r"<(?P<tag>[A-Za-z0-9_.:-]*?" + _KEY + r")(?:[ \t][^<>]*)?>(?P<secret>[^<]+)</(?P=tag)[ \t]*>"
        ),
        _ASSIGNMENT_HINTS,
    ),
    _NearKeywordRule(
        "high_entropy_secret",
        keyword=re.compile(
            r"(?i:secret|token|passw(?:or)?d|api[_-]?key|access[_-]?key|private[_-]?key"
            r"|credential|auth|session)"
        ),
        candidate=_HIGH_ENTROPY_CANDIDATE,
        accept=_looks_random,
        hints=(
            "secret",
            "token",
            "passw",
            "api",
            "access",
            "private",
            "credential",
            "auth",
            "session",
        ),
    ),
)

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


def redact(text: str) -> str:
    """``text`` with every secret replaced by ``[REDACTED:<type>]``; idempotent, deterministic."""
    for _ in range(_MAX_PASSES):
        findings = find_secrets(text)
        if not findings:
            return text
        parts: list[str] = []
        cursor = 0
        for finding in findings:
            parts.append(text[cursor : finding.start])
            parts.append(f"[REDACTED:{finding.type}]")
            cursor = finding.end
        parts.append(text[cursor:])
        text = "".join(parts)
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
