"""Test plan: provider latency spikes and dropped answers while clients keep submitting.

A worker thread drains the queue against a simulator whose every answer is slow (and whose
first answers are 503s the client retries), while clients keep POSTing /run. The queue depth
never exceeds ``max_queue_depth``; shedding engages (503 + Retry-After, problem+json) and
releases: once the backlog drains, submissions are accepted again and every accepted run ends
SUCCEEDED exactly once. SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.database.connect import unit_of_work
from harness.jobs.backpressure import queue_depth
from harness.jobs.worker import Worker
from tests.harness_stress import _workers as w
from tests.support.api import world

pytestmark = [pytest.mark.tier2, pytest.mark.timeout(1800)]

SCRIPT = Path(__file__).resolve().parent / "data" / "spiky_script.yaml"
LIMIT = 4
BODY = {"task": "summarise the workspace"}


def test_queue_stays_bounded_and_shedding_engages_and_releases(make_runtime: Any, database_url: str) -> None:
    submissions = w.scaled(200, minimum=30)
    with world(
        make_runtime, database_url, script=SCRIPT, max_queue_depth=LIMIT, shed_retry_after_seconds=2
    ) as app:
        stop = threading.Event()
        worker = threading.Thread(
            target=Worker(app.rt, worker_id="spiky").serve, args=(stop,), kwargs={"poll_seconds": 0.05}
        )
        worker.start()
        depths: list[int] = []
        codes: Counter[int] = Counter()
        accepted: list[str] = []
        try:
            for _ in range(submissions):
                answer = app.post("run", "alice", BODY)
                codes[answer.status_code] += 1
                if answer.status_code == 202:
                    accepted.append(answer.json()["run_id"])
                else:
                    assert answer.status_code == 503, answer.text
                    assert answer.headers["Retry-After"] == "2"
                    assert answer.headers["content-type"].startswith("application/problem+json")
                with unit_of_work(app.rt.sessions, read_only=True) as s:
                    depths.append(queue_depth(s))
            assert codes[503] > 0, "shedding never engaged"
            w.wait_for("the backlog to drain", lambda: w.all_terminal(app.rt), deadline_seconds=600)
            # Released: with the backlog gone, a submission is accepted again.
            again = app.post("run", "alice", BODY)
            assert again.status_code == 202, again.text
            accepted.append(again.json()["run_id"])
            w.wait_for("the last run", lambda: w.all_terminal(app.rt), deadline_seconds=120)
        finally:
            stop.set()
            worker.join(60)
    assert max(depths) <= LIMIT, f"queue depth reached {max(depths)} (limit {LIMIT})"
    statuses = w.assert_exactly_once(app.rt, accepted, steps_per_run=1)
    assert statuses == {"SUCCEEDED": len(accepted)}
