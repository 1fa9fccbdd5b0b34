"""Refuse to start a test session with a real-looking provider key in the environment.

Tests talk to the simulator and cassettes only; a real key in the environment means one
mistaken base URL away from a paid call and a key in a cassette. Synthetic keys the suite
uses (``sk-sim-...``, ``sk-test-...``, anything saying fake/dummy/synthetic/not-a-secret)
and short values pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

KEY_VARIABLES: Final = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "MISTRAL_API_KEY",
    "COHERE_API_KEY",
    "GROQ_API_KEY",
    "TOGETHER_API_KEY",
    "OPENROUTER_API_KEY",
    "HARNESS_PROVIDER_API_KEY",
)

# The published shapes of live keys: prefix, then a long run of key alphabet.
_REAL_SHAPES: Final = (
    re.compile(r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{20,}"),
    re.compile(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    re.compile(r"AIza[0-9A-Za-z_-]{30,}"),
    re.compile(r"gsk_[A-Za-z0-9]{20,}"),
    re.compile(r"[A-Za-z0-9]{32,}"),  # bare hex/base62 keys (Azure, Mistral, Cohere)
)
_SYNTHETIC: Final = re.compile(r"sim|test|fake|dummy|synthetic|not-a-secret|example|placeholder", re.I)


def looks_real(value: str) -> bool:
    """True when ``value`` has a live key's shape and does not say it is synthetic."""
    value = value.strip()
    if not value or _SYNTHETIC.search(value):
        return False
    return any(shape.fullmatch(value) for shape in _REAL_SHAPES)


def real_looking_keys(environ: Mapping[str, str]) -> list[str]:
    """Names (never values) of the provider-key variables holding real-looking keys."""
    names = set(KEY_VARIABLES) | {k for k in environ if k.endswith("_API_KEY")}
    return sorted(n for n in names if looks_real(environ.get(n, "")))


def refusal(names: list[str]) -> str:
    """The one-line reason the session will not start (variable names only, no values)."""
    return (
        f"refusing to run the tests: {', '.join(names)} hold(s) a real-looking provider key; "
        "tests never reach a real provider: unset it (e.g. `env -u "
        + names[0]
        + " make test`) or use a synthetic value such as sk-test-..."
    )
