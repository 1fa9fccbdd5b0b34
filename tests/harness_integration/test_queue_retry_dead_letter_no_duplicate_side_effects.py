"""Jobs retry with backoff, dead-letter after max attempts, and never repeat a side effect.

Test plan scenario "message retries then dead-letters after max attempts". The queue is
the real one (jobs table, leases, backoff on the frozen clock); retry counters are the
handler's own; the side effect is an approved ``write_artifact``, redelivered after a
worker crash and after a lease expired while its worker was still mid-step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from harness.clock import iso
from harness.database.connect import unit_of_work
from harness.database.models import Artifact, AuditEntry, Job, Run, SideEffect, Step
from harness.jobs import worker as worker_module
from harness.jobs.queue import JobKind
from harness.jobs.worker import Worker
from harness.orchestrator.loop import execute_run
from harness.providers.base import ChatRequest
from harness.runtime import Runtime
from tests.support.api import World, world
from tests.support.faults import CallHook, WorkerCrash, frozen_clock

pytestmark = [pytest.mark.tier1]

PLAIN = Path(__file__).parent / "data" / "plain_script.yaml"
START = datetime(2026, 1, 1, tzinfo=UTC)
REPORT = "# Quarterly report\n\nNorth: 120\nSouth: 80\nTotal: 200\n"
FINAL_MODEL_CALL = 4  # list_files, read_file, write_artifact, then the closing answer


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url) as it:
        yield it


@pytest.fixture
def plain(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url, script=PLAIN) as it:
        yield it


def _job(rt: Runtime, run_id: str, kind: str = ":start") -> Job:
    with unit_of_work(rt.sessions) as s:
        return s.execute(select(Job).where(Job.run_id == run_id, Job.dedupe_key.contains(kind))).scalar_one()


def _run(rt: Runtime, run_id: str) -> Run:
    with unit_of_work(rt.sessions) as s:
        return s.get_one(Run, run_id)


class FlakyHandler:
    """The real run handler behind ``failures`` injected failures; counts every delivery."""

    def __init__(self, failures: int | None) -> None:
        self.failures = failures  # None: fail forever
        self.deliveries = 0

    def __call__(self, rt: Runtime, job: Any) -> None:
        self.deliveries += 1
        if self.failures is None or self.deliveries <= self.failures:
            raise RuntimeError(f"transient handler failure #{self.deliveries}")
        worker_module._execute_run(rt, job)


def test_failing_handler_is_retried_with_exponential_backoff_then_succeeds(
    plain: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = FlakyHandler(failures=2)
    monkeypatch.setitem(worker_module.HANDLERS, JobKind.EXECUTE_RUN, handler)
    base = plain.rt.settings.job_retry_delay_seconds
    with frozen_clock() as clock:
        run_id = plain.post("run", "alice", {"task": "tidy up"}).json()["run_id"]

        assert plain.drain() == 1
        job = _job(plain.rt, run_id)
        assert (job.status, job.attempts, job.available_at) == (
            "queued",
            1,
            iso(START + timedelta(seconds=base)),
        )
        assert job.last_error == "RuntimeError: transient handler failure #1"

        clock.tick(timedelta(seconds=base - 1))
        assert plain.drain() == 0  # not due yet: backoff is honoured, not busy-retried
        clock.tick(timedelta(seconds=1))
        assert plain.drain() == 1
        job = _job(plain.rt, run_id)
        assert (job.status, job.attempts) == ("queued", 2)
        assert job.available_at == iso(START + timedelta(seconds=base + 2 * base))

        clock.tick(timedelta(seconds=2 * base))
        assert plain.drain() == 1

    job = _job(plain.rt, run_id)
    assert (job.status, job.attempts) == ("done", 3)
    assert handler.deliveries == 3
    assert _run(plain.rt, run_id).status == "SUCCEEDED"
    assert len(plain.sim.requests) == 1  # the model was called once, by the delivery that ran


def test_handler_that_always_fails_is_dead_lettered_and_its_run_failed(
    plain: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = FlakyHandler(failures=None)
    monkeypatch.setitem(worker_module.HANDLERS, JobKind.EXECUTE_RUN, handler)
    max_attempts = plain.rt.settings.job_max_attempts
    with frozen_clock() as clock:
        run_id = plain.post("run", "alice", {"task": "tidy up"}).json()["run_id"]
        for _ in range(max_attempts + 2):
            plain.drain()
            clock.tick(timedelta(hours=1))

    assert handler.deliveries == max_attempts  # bounded: no delivery after the last attempt
    job = _job(plain.rt, run_id)
    assert (job.status, job.attempts, job.lease_owner) == ("dead", max_attempts, None)
    view = plain.get(f"runs/{run_id}", "alice").json()
    assert view["status"] == "FAILED"
    assert view["error"].startswith(f"dead-lettered after {max_attempts} attempts")
    assert "RuntimeError" in view["error"]
    assert (
        job.last_error == f"RuntimeError: transient handler failure #{max_attempts}"
    )  # full text kept for operators
    assert [(t["from"], t["to"]) for t in view["transitions"]] == [("PENDING", "FAILED")]
    assert plain.sim.requests == []


def _await_approval_then_approve(w: World) -> str:
    run_id = w.post("run", "alice", {"task": "Write the quarterly report from sales.csv"}).json()["run_id"]
    w.drain()
    assert _run(w.rt, run_id).status == "AWAITING_APPROVAL"
    decided = w.post("approve", "bob", w.decision(run_id, "approve", "ok"))
    assert decided.status_code == 200, decided.text
    return run_id


def _artifact_file(w: World, run_id: str) -> Path:
    return w.rt.settings.artifacts_dir / "acme" / run_id / "report.md"


def _assert_written_exactly_once(w: World, run_id: str) -> None:
    with unit_of_work(w.rt.sessions) as s:
        artifacts = list(s.execute(select(Artifact).where(Artifact.run_id == run_id)).scalars())
        effects = s.execute(select(func.count()).select_from(SideEffect)).scalar_one()
        committed = s.execute(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "artifact.committed")
        ).scalar_one()
        steps = list(s.execute(select(Step).where(Step.run_id == run_id).order_by(Step.seq)).scalars())
    assert [(a.path, a.sha256) for a in artifacts] == [
        ("report.md", hashlib.sha256(REPORT.encode()).hexdigest())
    ]
    assert effects == 1 and committed == 1
    assert [s.name for s in steps if s.kind == "tool_call"] == ["list_files", "read_file", "write_artifact"]
    assert [s.seq for s in steps] == list(range(len(steps)))  # no gaps, no duplicates
    model_calls = [(s.seq, s.output.get("content")) for s in steps if s.kind == "model_call"]
    assert len(model_calls) == FINAL_MODEL_CALL, f"duplicate model-call steps recorded: {model_calls}"
    assert steps[-1].kind == "model_call"  # nothing recorded after the closing answer
    assert _artifact_file(w, run_id).read_text() == REPORT


def _transitions(w: World, run_id: str) -> list[tuple[str, str]]:
    return [(t["from"], t["to"]) for t in w.get(f"runs/{run_id}", "alice").json()["transitions"]]


HAPPY = [
    ("PENDING", "RUNNING"),
    ("RUNNING", "AWAITING_APPROVAL"),
    ("AWAITING_APPROVAL", "APPROVED"),
    ("APPROVED", "RUNNING"),
    ("RUNNING", "SUCCEEDED"),
]


def test_worker_crash_after_the_write_redelivers_and_resumes_without_rewriting(w: World) -> None:
    def crash(_call: int, _request: ChatRequest) -> None:
        raise WorkerCrash("worker process died after committing the artifact step")

    w.rt.providers[0] = CallHook(w.rt.providers[0], on_calls={FINAL_MODEL_CALL}, hook=crash)
    with frozen_clock() as clock:
        run_id = _await_approval_then_approve(w)
        assert w.drain() == 1
        resume = _job(w.rt, run_id, ":resume:")
        assert resume.status == "queued" and "WorkerCrash" in (resume.last_error or "")
        file = _artifact_file(w, run_id)
        first = (file.read_bytes(), file.stat().st_ino, file.stat().st_mtime_ns)

        clock.tick(timedelta(minutes=5))
        w.drain()
        clock.tick(timedelta(minutes=5))
        w.drain()

    run = _run(w.rt, run_id)
    assert run.status == "SUCCEEDED", (
        f"a redelivered job must resume the RUNNING run where the crashed worker stopped; got "
        f"{run.status}: {run.error}"
    )
    assert _transitions(w, run_id) == HAPPY
    _assert_written_exactly_once(w, run_id)
    assert (file.read_bytes(), file.stat().st_ino, file.stat().st_mtime_ns) == first  # untouched


def test_lease_expiring_mid_step_does_not_duplicate_the_step_or_the_write(w: World) -> None:
    takeover: list[bool] = []

    def second_worker_takes_over(_call: int, _request: ChatRequest) -> None:
        # Worker A is waiting on the model (no transaction open); its lease runs out and B claims.
        clock.tick(timedelta(seconds=w.rt.settings.job_lease_seconds + 1))
        takeover.append(Worker(w.rt, worker_id="worker-b").run_once())

    w.rt.providers[0] = CallHook(
        w.rt.providers[0], on_calls={FINAL_MODEL_CALL}, hook=second_worker_takes_over
    )
    with frozen_clock() as clock:
        run_id = _await_approval_then_approve(w)
        w.drain()
        for _ in range(3):
            clock.tick(timedelta(minutes=5))
            w.drain()

    assert takeover == [True]  # B really did get the job while A was mid-step
    assert _run(w.rt, run_id).status == "SUCCEEDED"
    assert _transitions(w, run_id) == HAPPY
    _assert_written_exactly_once(w, run_id)
    with unit_of_work(w.rt.sessions) as s:
        statuses = list(s.execute(select(Job.status).where(Job.run_id == run_id)).scalars())
    assert sorted(statuses) == ["done", "done"]


def test_redelivered_resume_job_after_success_changes_nothing(w: World) -> None:
    run_id = _await_approval_then_approve(w)
    w.drain()
    assert _run(w.rt, run_id).status == "SUCCEEDED"
    requests = len(w.sim.requests)
    file = _artifact_file(w, run_id)
    before = (file.read_bytes(), file.stat().st_mtime_ns)

    # The same resume job delivered again (a lost ack), and the handler invoked directly twice.
    with unit_of_work(w.rt.sessions) as s:
        s.execute(update(Job).where(Job.run_id == run_id).values(status="queued", lease_owner=None))
    assert w.drain() == 2
    assert execute_run(w.rt, run_id) == "SUCCEEDED"
    assert execute_run(w.rt, run_id) == "SUCCEEDED"

    assert len(w.sim.requests) == requests
    assert _transitions(w, run_id) == HAPPY
    _assert_written_exactly_once(w, run_id)
    assert (file.read_bytes(), file.stat().st_mtime_ns) == before
