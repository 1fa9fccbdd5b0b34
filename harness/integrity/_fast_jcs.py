"""RFC 8785 (JCS) bytes in one C encoder pass, for the audit chain's per-entry hashing.

For str/int/bool/None/list/dict values with ASCII keys, RFC 8785 and orjson's compact,
key-sorted output agree byte for byte (same escapes, raw UTF-8, no whitespace); orjson itself
refuses non-str keys, integers beyond 53 bits and lone surrogates. What remains differs in ways
visible in the output and found there with substring tests (memchr speed), never a Python walk
over the value:

- a float (orjson writes ``1.0``/``1e+16``, JCS ``1``/``10000000000000000``): its token ends
  in a fraction or an exponent followed by a closer, which one regex whose every branch starts
  with a literal finds (a string that merely looks like one costs the slow path, never wrong
  bytes);
- NaN and infinities, which orjson writes as ``null``: any ``null`` takes the slow path;
- a non-ASCII key, whose RFC 8785 order (UTF-16 code units) can differ from orjson's: any
  non-ASCII byte takes the slow path.

The slow path is ``rfc8785`` itself, so its bytes and its errors are the canonical ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from harness.canonical import jcs_bytes

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_dumps = orjson.dumps
# A number token orjson wrote as a float has a fraction (``.`` digits) or an exponent
# (``e+``/``e-`` digits) running up to a closer. Each pattern starts with a literal, so the
# regex engine skips to candidates at memchr speed; a string holding such text also matches,
# which only costs the slow path.
_FLOAT_TAIL = re.compile(rb"(?:\.[0-9]+(?:e[-+][0-9]+)?|e[-+][0-9]+)(?:[,}\]]|\Z)")
_ENTRY_KEYS = frozenset(
    ("seq", "at", "actor", "tenant", "action", "target", "payload", "prev_hash", "entry_hash")
)


def jcs(value: Any) -> bytes:
    """``jcs_bytes(value)``, fast for the usual case; raises what ``jcs_bytes`` raises."""
    try:
        data = _dumps(value, option=_OPTIONS)
    except TypeError:
        return jcs_bytes(value)
    if not data.isascii() or b"null" in data:
        return jcs_bytes(value)
    if _may_hold_float(data):
        return jcs_bytes(value)
    return data


def _may_hold_float(data: bytes) -> bool:
    # Substring tests first (memchr speed); the regex only runs on a candidate.
    return (b"." in data or b"e+" in data or b"e-" in data) and _FLOAT_TAIL.search(data) is not None


_HASH_MARK = b',"entry_hash":"'
_HASH_SPAN = len(_HASH_MARK) + 64 + 1  # the mark, 64 hex digits, the closing quote


def entry_leaf(entry: Mapping[str, Any]) -> bytes | None:
    """``jcs(entry without entry_hash)`` for a well-formed entry, without copying it.

    None when the entry is not the plain nine-field shape (extra or missing keys, a non-str
    field before ``entry_hash`` in key order, an entry_hash that is not 64 ASCII characters):
    the caller then takes the general path, which also says what is wrong.
    """
    if entry.keys() != _ENTRY_KEYS:
        return None
    entry_hash = entry["entry_hash"]
    # Keys sort as action actor at entry_hash payload prev_hash seq target tenant. With every
    # field but payload a plain str (so its quotes are escaped) and seq an int, the first
    # unescaped `,"entry_hash":"` is the real key, and a float, NaN or non-ASCII key can only
    # sit in the payload: the checks below look there alone.
    if not (
        type(entry_hash) is str
        and len(entry_hash) == 64
        and entry_hash.isascii()
        and entry_hash.isalnum()
        and type(entry["seq"]) is int
        and type(entry["action"]) is str
        and type(entry["actor"]) is str
        and type(entry["at"]) is str
        and type(entry["prev_hash"]) is str
        and type(entry["target"]) is str
        and type(entry["tenant"]) is str
    ):
        return None
    try:
        data = _dumps(entry, option=_OPTIONS)
    except TypeError:
        return None  # a lone surrogate or a payload orjson refuses: the general path decides
    cut = data.find(_HASH_MARK)
    if cut < 0 or not data.isascii():
        return None
    tail = data[cut + _HASH_SPAN :]
    if b"null" in tail or _may_hold_float(tail):
        return None
    return data[:cut] + tail
