"""Canonical JSON: the pretty form goldens are written in, and RFC 8785 bytes for hashing and signing."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785


def dumps_canonical(value: Any) -> str:
    """Golden form: sorted keys, 2-space indent, UTF-8 (no ``\\u`` escapes), trailing newline."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def jcs_bytes(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes: what we hash and sign."""
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    """SHA-256 of a JSON value's JCS bytes: a stable content address for any JSON value."""
    return sha256_hex(jcs_bytes(value))
