"""The background worker: claim a job, run it, complete or retry it, dead-letter when exhausted.

Main flow from here: ``Worker.run_once`` → ``harness.orchestrator.loop.execute_run``.
``drain`` runs the queue inline (tests, record and replay) in a defined order.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from sqlalchemy import func, select

from harness.database.connect import in_transaction, unit_of_work
from harness.database.models import Job as JobRow
from harness.database.models import Run
from harness.errors import IllegalTransition
from harness.jobs import queue
from harness.jobs.queue import ClaimedJob, JobKind, JobStatus
from harness.observability import DEAD_LETTERS, JOBS_PROCESSED, get_logger, set_queue_gauges
from harness.redaction import redact
from harness.runs.service import transition
from harness.runs.state import TERMINAL, RunStatus
from harness.runtime import Runtime

log = get_logger(__name__)

Handler = Callable[[Runtime, ClaimedJob], None]


def _execute_run(rt: Runtime, job: ClaimedJob) -> None:
    from harness.orchestrator.loop import execute_run  # the orchestrator imports the queue

    assert job.run_id is not None
    execute_run(rt, job.run_id)


HANDLERS: dict[str, Handler] = {JobKind.EXECUTE_RUN: _execute_run}


class Worker:
    def __init__(self, rt: Runtime, *, worker_id: str | None = None) -> None:
        self.rt = rt
        self.worker_id = worker_id or rt.ids.new("wrk")

    def run_once(self) -> bool:
        """Process at most one job; False when none was available."""
        # Claim and completion are short and idempotent per attempt, so a serialization failure,
        # deadlock or locked database re-runs them (bounded, counted) instead of failing the job.
        job = in_transaction(
            self.rt.sessions, lambda session: queue.claim(session, self.rt, worker_id=self.worker_id)
        )
        if job is None:
            self._publish_queue_gauges()  # idle: a good moment to count what is left
            return False
        handler = HANDLERS.get(job.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for job kind {job.kind!r}")
            queue.payload_schema(job.payload)
            handler(self.rt, job)
        except Exception as exc:
            self._failed(job, exc)
        else:
            in_transaction(
                self.rt.sessions,
                lambda session: queue.complete(session, job_id=job.id, worker_id=self.worker_id),
            )
            JOBS_PROCESSED.labels(kind=job.kind, outcome="done").inc()
        return True

    def _failed(self, job: ClaimedJob, exc: Exception) -> None:
        error = redact(f"{type(exc).__name__}: {exc}")
        with unit_of_work(self.rt.sessions) as session:
            status = queue.fail(
                session,
                self.rt,
                job_id=job.id,
                worker_id=self.worker_id,
                error=error,
                now=self.rt.clock.now(),
            )
            if status == JobStatus.DEAD and job.run_id is not None:
                run = session.get_one(Run, job.run_id)
                if RunStatus(run.status) not in TERMINAL:
                    # Public (API-visible) reason stays generic: exception text can carry SQL, paths
                    # or hostnames. The detail is in jobs.last_error and the logs, for operators.
                    run.error = f"dead-lettered after {job.attempts} attempts ({type(exc).__name__})"
                    # e.g. AWAITING_APPROVAL -> FAILED is not an edge; the job is dead anyway
                    with contextlib.suppress(IllegalTransition):
                        transition(session, self.rt, run, RunStatus.FAILED, reason=run.error, actor="worker")
        JOBS_PROCESSED.labels(kind=job.kind, outcome=str(status)).inc()
        dead = status == JobStatus.DEAD
        if dead:
            DEAD_LETTERS.labels(kind=job.kind).inc()
        log.warning(
            "job dead-lettered" if dead else "job failed",
            reason_code="dead_lettered" if dead else "retry_scheduled",
            job_id=job.id,
            kind=job.kind,
            attempt=job.attempts,
            status=str(status),
            error=error,
        )
        self._publish_queue_gauges()

    def _publish_queue_gauges(self) -> None:
        with unit_of_work(self.rt.sessions) as session:
            rows = session.execute(select(JobRow.status, func.count()).group_by(JobRow.status)).all()
        counts = {str(status): int(n) for status, n in rows}
        dead = counts.pop(str(JobStatus.DEAD), 0)
        set_queue_gauges(depth=sum(v for k, v in counts.items() if k != str(JobStatus.DONE)), dead=dead)

    def serve(self, stop: threading.Event, *, poll_seconds: float = 0.5) -> None:
        """Loop until ``stop`` is set, sleeping only when the queue is empty."""
        log.info("worker started", worker_id=self.worker_id)
        while not stop.is_set():
            if not self.run_once():
                stop.wait(poll_seconds)
        log.info("worker stopped", worker_id=self.worker_id)


def drain(rt: Runtime, *, max_jobs: int = 1000) -> int:
    """Run jobs inline until none is due; returns how many ran. Deterministic order (FIFO)."""
    worker = Worker(rt, worker_id="inline")
    count = 0
    while count < max_jobs and worker.run_once():
        count += 1
    return count
