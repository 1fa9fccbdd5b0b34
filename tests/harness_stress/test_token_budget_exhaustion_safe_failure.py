"""Oversized context would overrun the token budget: the run fails before the provider sees it.

Test plan scenario "oversized prompt/context drives token overrun". Two oversized contexts:
a tiny ``token_budget`` that the opening prompt already exceeds, and a large workspace file
read into the conversation by a tool. Either way the run ends FAILED with a budget reason,
the simulator never receives the oversized request, and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from harness.database.connect import unit_of_work
from harness.database.models import Approval, Artifact, AuditEntry
from tests.support.api import World, world

pytestmark = [pytest.mark.tier1]

SCRIPT = Path(__file__).parent / "data" / "budget_script.yaml"
BUDGET = 3000
ARCHIVE = "".join(f"{i:06d} INFO request served in 12ms from cache shard {i % 7}\n" for i in range(2000))


def _world(make_runtime: Any, database_url: str, **settings: Any) -> Iterator[World]:
    with world(make_runtime, database_url, script=SCRIPT, **settings) as it:
        (it.rt.settings.tenant_files_dir / "acme" / "archive.log").write_text(ARCHIVE)
        yield it


@pytest.fixture
def roomy(make_runtime: Any, database_url: str) -> Iterator[World]:
    # The whole file fits in a tool result, so only the budget stands between it and the model.
    yield from _world(make_runtime, database_url, token_budget=BUDGET, max_tool_result_chars=len(ARCHIVE))


@pytest.fixture
def generous(make_runtime: Any, database_url: str) -> Iterator[World]:
    yield from _world(
        make_runtime, database_url, token_budget=10 * len(ARCHIVE), max_tool_result_chars=len(ARCHIVE)
    )


@pytest.fixture
def tiny(make_runtime: Any, database_url: str) -> Iterator[World]:
    yield from _world(make_runtime, database_url, token_budget=50)


def _nothing_written(w: World, run_id: str) -> None:
    with unit_of_work(w.rt.sessions) as s:
        for model in (Artifact, Approval):
            assert s.execute(select(func.count()).select_from(model)).scalar_one() == 0
        failed = s.execute(
            select(AuditEntry.payload).where(
                AuditEntry.target == f"run/{run_id}", AuditEntry.action == "run.transition"
            )
        ).scalars()
        assert [p["to"] for p in failed][-1] == "FAILED"
    assert not (w.rt.settings.artifacts_dir / "acme" / run_id).exists() or not any(
        (w.rt.settings.artifacts_dir / "acme" / run_id).iterdir()
    )


def test_opening_prompt_over_a_tiny_budget_never_reaches_the_provider(tiny: World) -> None:
    run_id = tiny.post("run", "alice", {"task": "Summarise the archive"}).json()["run_id"]
    tiny.drain()

    view = tiny.get(f"runs/{run_id}", "alice").json()
    assert view["status"] == "FAILED"
    assert view["error"].startswith("budget-exceeded: token budget exhausted")
    assert "> 50" in view["error"]
    assert view["steps"] == [] and view["tokens_used"] == 0
    assert tiny.sim.requests == []
    _nothing_written(tiny, run_id)


def test_oversized_tool_result_fails_the_run_before_the_next_request(roomy: World) -> None:
    run_id = roomy.post("run", "alice", {"task": "Summarise the archive"}).json()["run_id"]
    roomy.drain()

    view = roomy.get(f"runs/{run_id}", "alice").json()
    assert view["status"] == "FAILED", view["error"]
    assert (
        view["error"].startswith("budget-exceeded: token budget exhausted") and f"> {BUDGET}" in view["error"]
    )
    assert [(s["kind"], s["name"]) for s in view["steps"]] == [
        ("model_call", "sim-small"),
        ("tool_call", "read_file"),
    ]
    # Exactly one request reached the provider: the small opening one, not the oversized follow-up.
    assert len(roomy.sim.requests) == 1
    assert all(len(json.dumps(r.body)) < len(ARCHIVE) for r in roomy.sim.requests)
    assert 0 < view["tokens_used"] <= BUDGET
    assert [(t["from"], t["to"]) for t in view["transitions"]] == [
        ("PENDING", "RUNNING"),
        ("RUNNING", "FAILED"),
    ]
    _nothing_written(roomy, run_id)


def test_the_same_file_within_budget_is_allowed(generous: World) -> None:
    """The guard refuses the overrun, not the file: with room to spare the run proceeds."""
    run_id = generous.post("run", "alice", {"task": "Summarise the archive"}).json()["run_id"]
    generous.drain()

    assert generous.get(f"runs/{run_id}", "alice").json()["status"] == "AWAITING_APPROVAL"
    assert len(generous.sim.requests) == 2
    assert any("001999 INFO" in json.dumps(r.body) for r in generous.sim.requests)  # the whole file went
