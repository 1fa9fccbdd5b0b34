"""Admission control for new runs: shed with 503 + Retry-After instead of queueing without bound.

Two limits, both counted in the database every worker shares (so they hold across any number
of API and worker processes): all jobs queued or leased (``max_queue_depth``) and those of the
caller's tenant (``max_tenant_in_flight``, so one tenant cannot fill the queue for everyone).
The check runs inside the unit of work that would enqueue, so on SQLite (one writer at a time)
it is exact; on PostgreSQL concurrent admissions may overshoot by at most the number of
requests in flight at that moment, which a limit meant as a ceiling on backlog tolerates.
In-flight work per worker is bounded by construction: a worker process runs one job at a time.
"""

from __future__ import annotations

from prometheus_client import Counter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from harness.database.models import Job, Run
from harness.errors import Overloaded
from harness.observability import REGISTRY
from harness.runtime import Runtime

_ACTIVE = ("queued", "leased")

RUNS_SHED = Counter(
    "harness_runs_shed",
    "POST /run requests refused with 503 because the queue was over a limit",
    ["limit"],
    registry=REGISTRY,
)


def queue_depth(session: Session, *, tenant_id: str | None = None, limit: int | None = None) -> int:
    """Jobs queued or leased, in all or for one tenant's runs; counting stops at ``limit``."""
    query = select(Job.id).where(Job.status.in_(_ACTIVE))
    if tenant_id is not None:
        query = query.join(Run, Run.id == Job.run_id).where(Run.tenant_id == tenant_id)
    if limit is not None:
        query = query.limit(limit)
    return int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def admit(session: Session, rt: Runtime, *, tenant_id: str) -> None:
    """Raise ``Overloaded`` (503, Retry-After) when the queue or the tenant is over its limit.

    Counting every admission made the count a fifth of POST /run's cost with a deep backlog,
    so after a count of ``depth`` the next ``(limit - depth) // 2`` admissions in this process
    are let through uncounted: far from the limit the check is nearly free, near it every
    request counts (bounded by ``limit`` rows). Half the headroom leaves the other half to the
    other API processes sharing the database.
    """
    settings = rt.settings
    _check(session, rt, "queue", None, settings.max_queue_depth)
    _check(session, rt, f"tenant:{tenant_id}", tenant_id, settings.max_tenant_in_flight)


def _check(session: Session, rt: Runtime, scope: str, tenant_id: str | None, limit: int) -> None:
    credits = rt.admission_credits
    left = credits.get(scope, 0)
    if left > 0:
        credits[scope] = left - 1
        return
    depth = queue_depth(session, tenant_id=tenant_id, limit=limit)
    if depth < limit:
        credits[scope] = (limit - depth) // 2
        return
    if tenant_id is None:
        RUNS_SHED.labels(limit="queue").inc()
        raise Overloaded(
            f"the run queue holds {depth} or more jobs (limit {limit}, HARNESS_MAX_QUEUE_DEPTH); "
            "retry after the Retry-After interval",
            retry_after=rt.settings.shed_retry_after_seconds,
        )
    RUNS_SHED.labels(limit="tenant").inc()
    raise Overloaded(
        f"your tenant has {depth} or more runs queued or running (limit {limit}, "
        "HARNESS_MAX_TENANT_IN_FLIGHT); retry after the Retry-After interval",
        retry_after=rt.settings.shed_retry_after_seconds,
    )
