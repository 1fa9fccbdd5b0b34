"""Checks on a side-effecting tool call made before any human is asked to approve it.

A write that could never be committed (too large, a path the sandbox refuses, a path this run
already wrote with other bytes) is refused up front, so an approver is never shown it; a write
of the very same bytes to the same path is a no-op. Also: how tool arguments appear in audit.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from harness.canonical import sha256_hex
from harness.database.models import Artifact
from harness.errors import PolicyViolation
from harness.redaction import redact
from harness.tools.sandbox import parse_tool_path

AUDITED_ARG_CHARS = 256


def check_write(session: Session, *, run_id: str, args: dict[str, Any], max_bytes: int) -> str | None:
    """Refuse (PolicyViolation) or pass a ``write_artifact`` call; a repeat of committed bytes
    returns the tool result to give instead of running it again."""
    path, content = args["path"], args["content"]
    size = len(content.encode("utf-8"))
    if size > max_bytes:
        raise PolicyViolation(
            f"write_artifact content is {size} bytes; the limit is {max_bytes}",
            reason="artifact-too-large",
        )
    parse_tool_path(path)  # the sandbox's text rules (absolute, '..', encodings, ...): SandboxViolation
    existing = session.execute(
        select(Artifact).where(Artifact.run_id == run_id, Artifact.path == path)
    ).scalar_one_or_none()
    if existing is None:
        return None
    if existing.sha256 == sha256_hex(redact(content).encode("utf-8")):
        return f"{path} was already written with exactly these bytes; nothing to do"
    raise PolicyViolation(
        f"{path} was already written in this run with other content; artifacts are never overwritten",
        reason="artifact-exists",
    )


def audited_args(args: Any) -> dict[str, Any]:
    """Arguments as audited: a value longer than AUDITED_ARG_CHARS becomes a prefix, size and digest."""
    shown = args if isinstance(args, dict) else {"raw": str(args)}
    capped: dict[str, Any] = {}
    for key, value in shown.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if len(text) > AUDITED_ARG_CHARS:
            capped[str(key)] = f"{text[:64]}… ({len(text)} chars, sha256 {sha256_hex(text.encode())[:16]})"
        else:
            capped[str(key)] = value
    return capped
