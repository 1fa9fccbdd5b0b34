"""The provider goldens: both wires in cassettes, faults identical in record and replay.

Transport faults live in no cassette: turning the injector off in replay changes the trace
(the retries vanish), so it is the injector - not a recorded response - that makes replay
match the recording. A 429's Retry-After survives in the cassette; a changed Anthropic prompt
is a miss localised on ``/v1/messages``; replaying twice finds no nondeterminism.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.orchestrator import prompts
from replay.gate import check
from replay.report import render_text
from replay.results import ScenarioStatus
from replay.sim.faults import FaultInjectingTransport
from replay.store import GoldenStore

pytestmark = [pytest.mark.tier1]

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_GOLDENS = [
    "anthropic_happy_path_with_approval",
    "provider_breaker_cycle",
    "provider_failover_to_anthropic",
    "provider_malformed_then_retry",
    "provider_rate_limit_retry_after",
    "provider_stream_cut_mid_tool_call",
    "provider_transport_faults",
]


@pytest.fixture
def project(tmp_path: Path) -> GoldenStore:
    for folder in ("goldens", "cassettes"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return GoldenStore(tmp_path)


def _interactions(name: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((ROOT / "cassettes" / f"{name}.yaml").read_text())
    return list(data["interactions"])


def test_provider_goldens_replay_clean_twice(project: GoldenStore) -> None:
    outcome = check(project, PROVIDER_GOLDENS, repeat=2, ci=True)
    assert outcome.ok, render_text(list(outcome.results))


def test_cassettes_hold_both_wires_and_only_real_responses() -> None:
    failover = [
        (i["request"]["uri"], i["response"]["status"]["code"])
        for i in _interactions("provider_failover_to_anthropic")
    ]
    assert {uri for uri, _ in failover} == {
        "https://provider.sim/v1/chat/completions",
        "https://provider.sim/v1/messages",
    }
    assert {code for uri, code in failover if uri.endswith("/chat/completions")} == {503}
    # the fallback's prompts carry the guard's wrapping and the redaction, like the primary's
    bodies = [i["request"]["body"] for i in _interactions("provider_failover_to_anthropic")]
    with_tool_result = [b for b in bodies if "tool_result" in b or '"role":"tool"' in b]
    assert with_tool_result and all("untrusted" in b and "[REDACTED" in b for b in with_tool_result)

    # five runs, six transport faults: only the five real answers were recorded
    transport = _interactions("provider_transport_faults")
    assert [i["response"]["status"]["code"] for i in transport] == [200] * 5

    limited = [i["response"] for i in _interactions("provider_rate_limit_retry_after")]
    headers = [r["headers"] for r in limited if r["status"]["code"] == 429]
    assert {"retry-after": ["2"]} in [{k: v for k, v in h.items() if k.startswith("retry")} for h in headers]
    assert any("retry-after-ms" in h for h in headers)


def test_without_the_transport_injector_replay_differs(
    project: GoldenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pass_through(self: FaultInjectingTransport, request: Any) -> Any:
        return self._inner.handle_request(request)

    monkeypatch.setattr(FaultInjectingTransport, "handle_request", pass_through)
    result = check(project, ["provider_transport_faults"], ci=True).results[0]
    assert result.status is not ScenarioStatus.PASSED
    assert "retries" in render_text([result])


def test_a_changed_prompt_is_a_miss_on_the_messages_route(
    project: GoldenStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jinja2 import FileSystemLoader

    copy = tmp_path / "templates"
    shutil.copytree(prompts.TEMPLATES_DIR, copy)
    system = copy / "system.v1.j2"
    text = system.read_text()
    assert "harness assistant" in text
    system.write_text(text.replace("harness assistant", "harness helper", 1))
    monkeypatch.setattr(prompts._env, "loader", FileSystemLoader(copy))
    if prompts._env.cache:
        prompts._env.cache.clear()

    result = check(project, ["anthropic_happy_path_with_approval"], ci=True).results[0]
    assert result.status in {ScenarioStatus.ERROR, ScenarioStatus.REGRESSED}
    report = render_text([result])
    assert "/v1/messages" in report
