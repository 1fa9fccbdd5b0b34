"""What leaves the process: every provider request body, checked against the redactor on the wire.

The trace keeps redacted copies of prompts and the cassette matcher redacts request bodies
before matching, so a regression that sends a secret to the provider would still replay green.
:class:`WireWatch` sits in front of the cassette's scrubber and sees each outgoing body raw: a
body the redactor would change is a REDACTION LEAK, named by call number and secret type.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from harness.redaction import redact, redact_data

_MARKER = re.compile(r"\[REDACTED:([a-z0-9_]+)\]")


@dataclass(frozen=True)
class WireLeak:
    """One provider request that carried something the redactor would have removed."""

    call: int  # 0-based, in the order requests left the process
    path: str
    secret_types: tuple[str, ...]

    def describe(self, scenario: str) -> str:
        return (
            f"REDACTION LEAK in scenario {scenario!r}: provider call {self.call} (POST {self.path}) "
            f"sends {', '.join(self.secret_types)} unredacted"
        )


def leaked_types(body: bytes | str | None) -> tuple[str, ...]:
    """The secret types the redactor finds in ``body`` (empty when it would change nothing)."""
    if body is None:
        return ()
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data: Any = json.loads(text)
    except ValueError:
        before, after = text, redact(text)
    else:
        before = json.dumps(data, sort_keys=True, ensure_ascii=False)
        after = json.dumps(redact_data(data), sort_keys=True, ensure_ascii=False)
    if before == after:
        return ()
    added = Counter(_MARKER.findall(after)) - Counter(_MARKER.findall(before))
    return tuple(sorted(added)) or ("unknown",)


class WireWatch:
    """Wraps a cassette's request scrubber: inspects each distinct request once, before scrubbing."""

    def __init__(self) -> None:
        self.leaks: list[WireLeak] = []
        self._seen: list[Any] = []  # the request objects themselves, so ids are never reused

    def wrap(self, scrub: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def inspect_then_scrub(request: Any) -> Any:
            if not any(request is seen for seen in self._seen):
                call = len(self._seen)
                self._seen.append(request)
                types = leaked_types(request.body)
                if types:
                    self.leaks.append(WireLeak(call, urlsplit(request.uri).path, types))
            return scrub(request)

        return inspect_then_scrub
