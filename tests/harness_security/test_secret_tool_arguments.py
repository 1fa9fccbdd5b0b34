"""A bare secret passed by the model as a tool argument is redacted by shape before it is stored.

Unit half: the shape detector (``harness.secret_shape``) on random tokens and on the values
our traces are full of (digests, UUIDs, run ids, file names), and the argument rewriter.
Live half: a simulated model sends ``read_file {"path": "<40 random base62>"}``; the token is
in no step, no event, no audit entry, no API response and no later provider request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from harness.database.connect import unit_of_work
from harness.database.models import AuditEntry, Step
from harness.events import event_to_dict
from harness.secret_shape import looks_like_secret_value, redact_tool_arguments, redact_tool_call
from tests.support.api import World, world

pytestmark = [pytest.mark.tier1, pytest.mark.security]

SCRIPT = Path(__file__).parent / "data" / "secret_argument_script.yaml"
BARE = "huG8GP38g4o5MNJAYKJ1UXXFWXLCpaNfhs0gCa05"

SECRET_SHAPED = [
    BARE,
    "RFRunzqw7wZyVGOeUvfJIssDj4PTTKtb2TxxDBfz",
    "5LJF3hBGZW3M4Fz6Hq2AK7EGHZbKoXi0d9TH4QgT",
    "t6-UzH-7_3eLO6m4H5x29iI_Vmy0s5bl",  # base64url, 32 characters
    "NBEjE4o24hOSDRET79IqJzQtJZPGSEZ4zBms1rac==",  # padded
    f"vault/{BARE}",  # a path whose one segment is the secret
    f"{BARE}.txt",
]
NOT_SECRETS = [
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",  # sha256
    "11f6ad8ec52a2984abaafd7c3b516503785c2072",  # sha1
    "123e4567-e89b-12d3-a456-426614174000",  # UUID
    "3F2A9C0D-4B5E-6F70-8192-A3B4C5D6E7F8",
    "run_3f2a9c0d4b5e6f708192a3b4c5d6e7f8",
    "apr_9ec2d776389605fe",
    "sales.csv",
    "reports/2024/Q3/north-region-sales-summary.md",
    "QuarterlyRevenueReportFinalDraft2024.md",
    "SalesForecastNorthRegion2025Q1",
    "customer_feedback_analysis_v2.csv",
    "docs/ArchitectureOverviewForTeamAlpha2024.md",
    "MyCompanyName-Onboarding-Guide-2023.pdf",
    "getUserById2FromDBv3AndCacheIt",
    "2026-01-05T14:00:02Z",
    "v1.2.3-rc.4+build.20240101",
    "x" * 40,
    "a short one",
    "the quick brown fox jumps over the lazy dog 1234567890",
]


@pytest.mark.parametrize("value", SECRET_SHAPED)
def test_secret_shaped_values_are_recognised(value: str) -> None:
    assert looks_like_secret_value(value)


@pytest.mark.parametrize("value", NOT_SECRETS)
def test_digests_ids_and_file_names_are_not(value: str) -> None:
    assert not looks_like_secret_value(value)


def test_arguments_are_rewritten_only_when_something_is_redacted() -> None:
    clean = '{"path":  "sales.csv"}'
    assert redact_tool_arguments(clean) == clean  # byte for byte: recorded calls keep their form
    rewritten = json.loads(redact_tool_arguments(json.dumps({"path": BARE, "n": 3, "tags": [BARE, "ok"]})))
    assert rewritten == {
        "path": "[REDACTED:secret_value]",
        "n": 3,
        "tags": ["[REDACTED:secret_value]", "ok"],
    }
    # prefixed secrets and secret-named keys go through the text redactor as before
    assert json.loads(redact_tool_arguments('{"content": "key AKIAZ7QXFAKEARGS0001"}')) == {
        "content": "key [REDACTED:aws_access_key_id]"
    }
    assert json.loads(redact_tool_arguments('{"password": "hunter2"}')) == {
        "password": "[REDACTED:secret_field]"
    }
    # not JSON: only the text redactor applies (a bare token in prose is not judged by shape)
    assert redact_tool_arguments("not json: password=hunter2") == (
        "not json: password=[REDACTED:secret_assignment]"
    )


def test_a_tool_call_message_keeps_its_shape() -> None:
    arguments = json.dumps({"path": BARE})
    call = {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": arguments}}
    out = redact_tool_call(call)
    assert out["id"] == "c1" and out["function"]["name"] == "read_file"
    assert json.loads(out["function"]["arguments"]) == {"path": "[REDACTED:secret_value]"}
    assert call["function"]["arguments"] == json.dumps({"path": BARE}), "input was mutated"


# --- live ----------------------------------------------------------------------------------------


@pytest.fixture
def w(make_runtime: Any, sqlite_database_url: str) -> Iterator[World]:
    with world(make_runtime, sqlite_database_url, script=SCRIPT) as it:
        yield it


def test_a_bare_secret_argument_reaches_no_sink_and_is_not_echoed(w: World) -> None:
    accepted = w.post("run", "alice", {"task": "Open the vault entry"})
    run_id = accepted.json()["run_id"]
    w.drain()
    view = w.get(f"runs/{run_id}", "alice")
    assert view.json()["status"] == "SUCCEEDED", view.text
    with unit_of_work(w.rt.sessions) as s:
        steps = [(st.input, st.output) for st in s.execute(select(Step)).scalars()]
        audit = [e.payload for e in s.execute(select(AuditEntry)).scalars()]
    surfaces = {
        "steps": json.dumps(steps),
        "audit": json.dumps(audit),
        "api": accepted.text + view.text,
        "events": json.dumps(
            [event_to_dict(e) for e in w.rt.sink.events],  # type: ignore[attr-defined]
            default=str,
        ),
        "provider requests after the answer": json.dumps([r.body for r in w.sim.requests[1:]]),
    }
    for name, text in surfaces.items():
        assert BARE not in text, f"{name} holds the bare secret"
    assert "[REDACTED:secret_value]" in surfaces["steps"]
    assert "[REDACTED:secret_value]" in surfaces["provider requests after the answer"]
    # the ordinary argument next to it was kept as the model sent it
    assert {"path": "sales.csv"} in [
        json.loads(call["function"]["arguments"])
        for _, output in steps
        for call in output.get("tool_calls") or []
    ]
