"""Durable jobs in the same database as the runs (transactional outbox).

A job is enqueued inside the caller's unit of work, so a run row and its first job commit
together. Workers claim with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number
of worker processes on any number of machines claim disjoint jobs without waiting on each
other; SQLite serialises writers), retry with backoff, and dead-letter after
``max_attempts``. Job order comes from a sequence on PostgreSQL (never ``max()+1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from harness.clock import iso
from harness.database.connect import is_postgres
from harness.database.models import Job
from harness.runtime import Runtime


class JobStatus(StrEnum):
    QUEUED = "queued"
    LEASED = "leased"
    DONE = "done"
    DEAD = "dead"


class JobKind(StrEnum):
    EXECUTE_RUN = "run.execute"


# Job payloads carry a schema version so workers of different releases can share one queue.
# v0 is the unversioned payload of earlier releases (still processed: same meaning); a worker
# meeting a newer version refuses it with UnsupportedJobSchema, which fails the attempt and
# leaves the job to retry with backoff (a newer worker can take it) and dead-letter at last.
SCHEMA_FIELD = "schema"
PAYLOAD_SCHEMA = 1
SUPPORTED_SCHEMAS = frozenset((0, 1))


class UnsupportedJobSchema(Exception):
    """A job written by a newer release than this worker."""


def payload_schema(payload: dict[str, Any]) -> int:
    """The payload's schema version; refuse one this worker does not understand."""
    version = payload.get(SCHEMA_FIELD, 0)
    if type(version) is not int or version not in SUPPORTED_SCHEMAS:
        raise UnsupportedJobSchema(
            f"job payload schema {version!r} is not one this worker understands "
            f"({sorted(SUPPORTED_SCHEMAS)}); upgrade the worker to the release that enqueued it"
        )
    return version


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    kind: str
    run_id: str | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


def enqueue(
    session: Session,
    rt: Runtime,
    *,
    kind: JobKind,
    run_id: str | None,
    dedupe_key: str,
    payload: dict[str, Any] | None = None,
) -> str:
    """Add a job in the caller's transaction; ``dedupe_key`` is unique, so enqueueing twice fails."""
    now = iso(rt.clock.now())
    job = Job(
        id=rt.ids.new("job"),
        kind=str(kind),
        run_id=run_id,
        payload={**(payload or {}), SCHEMA_FIELD: PAYLOAD_SCHEMA},
        dedupe_key=dedupe_key,
        status=JobStatus.QUEUED,
        attempts=0,
        max_attempts=rt.settings.job_max_attempts,
        available_at=now,
        created_at=now,
    )
    if not is_postgres(rt.engine):
        # SQLite: no sequences, one writer at a time; one index probe inside the INSERT.
        job.order_key = select(func.coalesce(func.max(Job.order_key), 0) + 1).scalar_subquery()
    session.add(job)
    session.flush()
    return job.id


def claim(session: Session, rt: Runtime, *, worker_id: str) -> ClaimedJob | None:
    """Lease the oldest available job (queued and due, or leased with an expired lease)."""
    now_dt = rt.clock.now()
    now = iso(now_dt)
    query = (
        select(Job)
        .where(
            ((Job.status == JobStatus.QUEUED) & (Job.available_at <= now))
            | ((Job.status == JobStatus.LEASED) & (Job.lease_expires_at <= now))
        )
        .order_by(Job.available_at, Job.order_key)
        .limit(1)
    )
    if is_postgres(rt.engine):
        query = query.with_for_update(skip_locked=True)
    job = session.execute(query).scalar_one_or_none()
    if job is None:
        return None
    job.status = JobStatus.LEASED
    job.attempts += 1
    job.lease_owner = worker_id
    job.lease_expires_at = iso(now_dt + timedelta(seconds=rt.settings.job_lease_seconds))
    session.flush()
    return ClaimedJob(job.id, job.kind, job.run_id, dict(job.payload), job.attempts, job.max_attempts)


def complete(session: Session, *, job_id: str, worker_id: str) -> bool:
    """Mark done if we still hold the lease; False means another worker took it over."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == worker_id, Job.status == JobStatus.LEASED)
        .values(status=JobStatus.DONE, lease_expires_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def fail(
    session: Session, rt: Runtime, *, job_id: str, worker_id: str, error: str, now: datetime
) -> JobStatus:
    """Record a failed attempt: back to the queue with backoff, or dead-lettered when out of attempts."""
    job = session.get(Job, job_id)
    if job is None or job.lease_owner != worker_id:
        return JobStatus.LEASED
    job.last_error = error[:2000]
    job.lease_owner = None
    job.lease_expires_at = None
    if job.attempts >= job.max_attempts:
        job.status = JobStatus.DEAD
    else:
        delay = rt.settings.job_retry_delay_seconds * (2 ** (job.attempts - 1))
        job.status = JobStatus.QUEUED
        job.available_at = iso(now + timedelta(seconds=delay))
    session.flush()
    return JobStatus(job.status)


def pending_count(session: Session) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(Job).where(Job.status.in_([JobStatus.QUEUED, JobStatus.LEASED]))
        ).scalar_one()
    )
