"""pytest-recording, configured the project's way: scrubbed cassettes matched by canonical request.

``vcr_config()`` is what the ``vcr_config`` fixture of :mod:`replay.pytest_plugin` returns:
requests keep only method, a fixed provider origin + path and the canonical, redacted body;
responses keep status, content type and a redacted body; our own app's in-process traffic is
never recorded. Requests match on method + path + canonical body, so a simulator on any
ephemeral port replays the same cassette and a changed prompt never gets the old answer.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from vcr.request import Request

from replay.cassette import request_key, scrub_request, scrub_response

__all__ = ["BODY_MATCHER", "LOOPBACK_HOSTS", "harness_request_matcher", "vcr_config"]

BODY_MATCHER: Final = "harness_request"
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1", "testserver")


def harness_request_matcher(r1: Request, r2: Request) -> None:
    """vcrpy matcher: raise ``AssertionError`` unless method, path and canonical body agree."""
    one = request_key(r1.method, urlsplit(r1.uri).path, r1.body)
    two = request_key(r2.method, urlsplit(r2.uri).path, r2.body)
    assert one == two, f"{r1.method} {urlsplit(r1.uri).path}: the canonical request bodies differ"


def vcr_config() -> dict[str, Any]:
    """Keyword arguments for vcrpy (pytest-recording's ``vcr_config`` fixture)."""
    return {
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "match_on": ("method", "path", BODY_MATCHER),
        "decode_compressed_response": True,
        "filter_headers": ["authorization", "openai-organization", "openai-project", "cookie"],
        "allow_playback_repeats": False,
    }
