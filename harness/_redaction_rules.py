"""The secret-finding rules of :mod:`harness.redaction`, in priority order.

Written from the publicly documented token formats (the gitleaks and detect-secrets rule
sets describe them): one regex per token shape, keyword-gated candidates for shapeless
secrets, and the generic assignment forms (``key = value`` in its many spellings, YAML and
header lines, block scalars, XML elements). :mod:`harness.redaction` runs them, merges
overlapping finds and renders markers. Pure: no I/O imports.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

__all__ = ["RULES", "Rule"]

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


Rule = _PatternRule | _NearKeywordRule
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
RULES: Final[tuple[Rule, ...]] = (
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
