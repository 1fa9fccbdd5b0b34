"""The model provider goes down during an active run: it fails safely, the worker carries on.

Test plan scenario "model provider outage during active run". In-process (no real
processes): the provider is the real OpenAI client against the simulator, wrapped in an
outage injector that, once down, sends the same SDK calls to a refused loopback port.
The run must end FAILED with a clear reason (never hung in RUNNING), its history must be
consistent, the worker must keep draining other runs, and after recovery (breaker reset on
the frozen clock) a new run succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from harness.database.connect import unit_of_work
from harness.database.models import Job
from harness.jobs.queue import pending_count
from harness.providers.resilience import BreakerState
from tests.support.api import World, world
from tests.support.faults import Outage, frozen_clock

pytestmark = [pytest.mark.tier1]

SCRIPT = Path(__file__).parent / "data" / "outage_script.yaml"
TASK = {"task": "Take an inventory of the workspace"}


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url, script=SCRIPT) as it:
        yield it


def _submit(w: World) -> str:
    resp = w.post("run", "alice", TASK)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["run_id"])


def _view(w: World, run_id: str) -> dict[str, Any]:
    return dict(w.get(f"runs/{run_id}", "alice").json())


def test_outage_mid_run_fails_the_run_cleanly_and_the_service_recovers(w: World) -> None:
    outage = Outage(w.rt.providers[0], down_after_calls=1)  # the first turn answers, then it is gone
    w.rt.providers[0] = outage
    settings = w.rt.settings

    with frozen_clock() as clock:
        active = _submit(w)
        bystanders = [_submit(w), _submit(w)]
        processed = w.drain()

        # Not hung: every job was handled in this one drain and none is left queued or leased.
        assert processed == 3
        with unit_of_work(w.rt.sessions) as s:
            assert pending_count(s) == 0
            assert set(s.execute(select(Job.status)).scalars()) == {"done"}

        view = _view(w, active)
        assert view["status"] == "FAILED"
        assert view["error"].startswith("provider-error:") and "connection failed" in view["error"]
        assert [(t["from"], t["to"]) for t in view["transitions"]] == [
            ("PENDING", "RUNNING"),
            ("RUNNING", "FAILED"),
        ]
        assert view["transitions"][-1]["reason"] == view["error"]
        assert [(s["kind"], s["outcome"]) for s in view["steps"]] == [
            ("model_call", "ok"),
            ("tool_call", "ok"),
        ]
        assert view["pending_approval"] is None and view["artifacts"] == []

        # The other runs were served too: failed fast with a reason, the breaker shielding the provider.
        for run_id in bystanders:
            other = _view(w, run_id)
            assert other["status"] == "FAILED"
            assert other["error"].startswith(("provider-error:", "circuit-open:"))
        assert w.rt.breakers[outage.name].state is BreakerState.OPEN
        assert outage.refused == settings.breaker_failure_threshold  # retries bounded by the breaker
        assert len(w.rt.sleeper.slept) <= 3 * (settings.retry_max_attempts - 1)  # type: ignore[attr-defined]

        # Recovery: the provider is back and the breaker's reset interval has passed.
        outage.up()
        clock.tick(timedelta(seconds=settings.breaker_reset_seconds))
        recovered = _submit(w)
        assert w.drain() == 1

    done = _view(w, recovered)
    assert done["status"] == "SUCCEEDED", done["error"]
    assert [(t["from"], t["to"]) for t in done["transitions"]] == [
        ("PENDING", "RUNNING"),
        ("RUNNING", "SUCCEEDED"),
    ]
    assert w.rt.breakers[outage.name].state is BreakerState.CLOSED
    # The failed run stays failed: recovery does not rewrite history.
    assert _view(w, active)["status"] == "FAILED"
