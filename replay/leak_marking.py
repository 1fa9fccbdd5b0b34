"""Trace scrubbing that names the sink that leaked: ``[LEAKED:<type>]`` where a secret was found.

The harness redacts at every sink (ingress, prompts, steps, audit, approvals, artifacts). A
golden must catch the day one of them stops doing so. If the replay engine silently
redacted whatever reached the trace, such a regression would replay green; instead every
secret still present when the trace is assembled is replaced by ``[LEAKED:<type>]``, which
differs from the golden's ``[REDACTED:<type>]`` in exactly the section and field that leaked.
Only client input (the API request bodies a scenario sends) is redacted normally before this.
"""

from __future__ import annotations

from typing import Any

from harness.redaction import find_secrets, redact, replace_findings

__all__ = ["LEAK_MARKER_PREFIX", "mark_leaks"]

LEAK_MARKER_PREFIX = "[LEAKED:"


def _mark_text(text: str) -> str:
    findings = find_secrets(text)
    if not findings:
        return text
    # whatever a marker brings into a rule's reach is still redacted, never left raw
    return redact(replace_findings(text, findings, prefix=LEAK_MARKER_PREFIX))


def mark_leaks(value: Any) -> Any:
    """A copy of JSON-like ``value`` with every secret in a string (or key) marked as leaked."""
    if isinstance(value, str):
        return _mark_text(value)
    if isinstance(value, list | tuple):
        return [mark_leaks(item) for item in value]
    if isinstance(value, dict):
        return {(_mark_text(k) if isinstance(k, str) else k): mark_leaks(v) for k, v in value.items()}
    return value
