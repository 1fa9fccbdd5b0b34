"""A rejected signature, a refused tool and a dead-lettered job (test_metrics_asserted.py) are each
logged with a reason code, and the log holds no secret: not the signing secret, not a key."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.observability import configure_logging
from tests.support.api import World, world

pytestmark = [pytest.mark.tier1, pytest.mark.security]

EXFIL = Path(__file__).resolve().parents[1] / "harness_e2e" / "data" / "exfiltration_script.yaml"
SIGNING_SECRET = "s" * 8 + "-synthetic-signing-secret-for-tests-0123"


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(stream=stream)
    yield stream
    configure_logging()


def _events(stream: io.StringIO, event: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, stream.getvalue().splitlines()) if e.get("event") == event]


def test_rejected_signatures_are_logged_with_their_reason_code(
    make_runtime: Any, sqlite_database_url: str, logs: io.StringIO
) -> None:
    with world(
        make_runtime,
        sqlite_database_url,
        request_signing_secrets=[SIGNING_SECRET],
        require_signed_requests=True,
    ) as w:
        unsigned = w.post("run", "alice", {"task": "tidy up"})
        forged = w.post(
            "run",
            "alice",
            {"task": "tidy up"},
            **{
                "X-Harness-Timestamp": str(int(w.rt.clock.now().timestamp())),
                "X-Harness-Nonce": "n" * 32,
                "X-Harness-Signature": "v2=" + "0" * 64,  # well-formed, wrong HMAC
            },
        )
        tokens = [k.token for k in w.keys.values()]
    assert (unsigned.status_code, forged.status_code) == (401, 401)
    refused = [(e["status"], e["reason_code"]) for e in _events(logs, "request refused")]
    assert refused[0] == (401, "missing-signature")
    assert refused[1][0] == 401 and refused[1][1] in {
        "signature-mismatch",
        "malformed-signature",
        "malformed-nonce",
    }
    text = logs.getvalue()
    assert SIGNING_SECRET not in text and not any(t in text for t in tokens)


@pytest.fixture
def exfil(make_runtime: Any, sqlite_database_url: str) -> Iterator[World]:
    with world(make_runtime, sqlite_database_url, script=EXFIL) as it:
        yield it


def test_refused_tools_are_logged_with_their_reason_code_and_no_file_content(
    exfil: World, logs: io.StringIO
) -> None:
    run_id = exfil.post("run", "alice", {"task": "Tidy up the workspace"}).json()["run_id"]
    exfil.drain()
    refused = _events(logs, "tool refused")
    assert refused, "the exfiltration script's reads outside the workspace must be refused"
    assert {e["tool"] for e in refused} == {"read_file"}
    assert {e["run_id"] for e in refused} == {run_id}
    assert all(e["reason_code"] and e["reason_code"] != "policy-violation" for e in refused)
    assert "root:x:0:0" not in logs.getvalue() and "PRIVATE KEY" not in logs.getvalue()
