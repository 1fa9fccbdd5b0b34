"""The API's front door for client text: every value a request carries is checked and redacted here.

One function, :func:`admit`, runs on every field of every request body (the schemas' shared
base :class:`harness.api.schemas.RequestBody` calls it) and on every path parameter (the
router dependency :func:`admit_path_params`). It refuses characters no backend can store and
returns the value passed through the secret redactor, so what is persisted, logged, audited,
prompted and returned downstream is the redacted text, never the raw one.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from harness.redaction import redact_data

__all__ = ["admit", "admit_path_params", "unstorable_character"]

# Kept in free text: tab, line feed, carriage return. Everything else below U+0020, DEL, the
# C1 block and lone surrogates is refused: NUL cannot be stored in PostgreSQL text at all,
# a lone surrogate cannot be encoded as UTF-8, and the rest have no business in a task.
_ALLOWED_CONTROLS: Final = frozenset("\t\n\r")


def unstorable_character(text: str) -> str | None:
    """The first character of ``text`` that is refused at the edge, as ``U+XXXX``; None if clean."""
    for char in text:
        code = ord(char)
        if char in _ALLOWED_CONTROLS:
            continue
        if code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF:
            return f"U+{code:04X}"
    return None


def _refuse_unstorable(value: Any) -> None:
    if isinstance(value, str):
        bad = unstorable_character(value)
        if bad is not None:
            raise ValueError(
                f"contains the control character {bad}, which cannot be stored; remove it and resend"
            )
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_unstorable(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_unstorable(key)
            _refuse_unstorable(item)


def admit(value: Any) -> Any:
    """``value`` (a field of a request) refused if unstorable, else returned redacted."""
    _refuse_unstorable(value)
    return redact_data(value)


def admit_path_params(request: Request) -> None:
    """Router dependency: path parameters obey the same edge rule as body fields (422 otherwise)."""
    errors = []
    for name, value in request.path_params.items():
        if isinstance(value, str):
            bad = unstorable_character(value)
            if bad is not None:
                errors.append(
                    {
                        "loc": ("path", name),
                        "msg": f"Value error, contains the control character {bad}, which cannot be "
                        "stored; remove it and resend",
                        "type": "value_error",
                    }
                )
    if errors:
        raise RequestValidationError(errors)
