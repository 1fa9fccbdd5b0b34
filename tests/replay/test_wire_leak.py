"""Replay sees what leaves the process: a secret sent to the provider is a REDACTION LEAK (even when
the redacted trace and cassette cannot see it), and one retry more than recorded is a `retries` diff."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from replay import engine
from replay.gate import check
from replay.report import render_text
from replay.results import ScenarioStatus
from replay.store import GoldenStore
from replay.wire import leaked_types

pytestmark = [pytest.mark.tier1, pytest.mark.security]

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "secret_in_tool_result"


@pytest.fixture
def project(tmp_path: Path) -> GoldenStore:
    for folder in ("goldens", "cassettes"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return GoldenStore(tmp_path)


def _tool_results_sent_unredacted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The regression: the provider layer sends the raw tool result (here: puts the key back).

    Everything the trace records (events, steps, audit) stays redacted, and the cassette matcher
    redacts the body before matching, so nothing but the wire can tell.
    """
    from dataclasses import replace

    from harness.providers.openai_client import OpenAIChatClient

    original = OpenAIChatClient.complete

    def leaky(self: OpenAIChatClient, request: Any) -> Any:
        messages = [
            {**m, "content": m["content"].replace("[REDACTED:aws_access_key_id]", "AKIAZ7QXEXAMPLE4D2XQ")}
            if isinstance(m.get("content"), str)
            else m
            for m in request.messages
        ]
        return original(self, replace(request, messages=messages))

    monkeypatch.setattr(OpenAIChatClient, "complete", leaky)


def test_a_secret_sent_to_the_provider_is_a_redaction_leak_naming_call_and_type(
    project: GoldenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tool_results_sent_unredacted(monkeypatch)
    result = check(project, [SCENARIO], ci=True).results[0]
    assert result.status is ScenarioStatus.REGRESSED, result.message
    assert result.diff is not None
    leaks = [d for d in result.diff.differences if d.section == "redaction_leak"]
    assert leaks, result.diff.sections
    assert leaks[0].path == "wire[1]"  # call 0 only lists the task; call 1 carries the file
    assert "REDACTION LEAK" in leaks[0].new and SCENARIO in leaks[0].new
    assert "aws_access_key_id" in leaks[0].new
    report = render_text([result])
    assert "redaction_leak" in report
    assert "AKIAZ7QXEXAMPLE4D2XQ" not in report  # the report names the type, never the secret


def test_without_the_wire_check_the_same_leak_replays_green(
    project: GoldenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: trace and cassette are redacted copies, so only the wire sees the leak."""
    _tool_results_sent_unredacted(monkeypatch)

    class Blind(engine.WireWatch):
        def wrap(self, scrub: Any) -> Any:
            return scrub

    monkeypatch.setattr(engine, "WireWatch", Blind)
    result = check(project, [SCENARIO], ci=True).results[0]
    assert result.status is ScenarioStatus.PASSED, render_text([result])


def test_leaked_types_names_each_secret_type_once() -> None:
    body = b'{"messages":[{"content":"key AKIAZ7QXEXAMPLE4D2XQ and AKIAZ7QXEXAMPLE4D2XR"}]}'
    assert leaked_types(body) == ("aws_access_key_id",)
    assert leaked_types(b'{"messages":[{"content":"[REDACTED:aws_access_key_id] only"}]}') == ()
    assert leaked_types(None) == ()


def test_a_retry_beyond_the_recorded_attempts_is_a_retries_difference(
    project: GoldenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One more attempt than recorded shows up in the `retries` section, not only as a cassette error."""
    import harness.orchestrator.loop as loop

    original = loop.RetryPolicy
    monkeypatch.setattr(loop, "RetryPolicy", lambda attempts, base, cap: original(attempts + 1, base, cap))
    result = check(project, ["provider_error"], ci=True).results[0]
    assert result.status is ScenarioStatus.REGRESSED, result.message
    assert result.diff is not None
    retries = [d for d in result.diff.differences if d.section == "retries"]
    assert retries, result.diff.sections
    assert any(d.change == "added" for d in retries), [(d.path, d.change) for d in retries]
    assert "retry beyond the recorded attempts" in result.message
