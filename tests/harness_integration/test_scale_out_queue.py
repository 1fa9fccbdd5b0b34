"""Scale-out controls: load shedding, read-only units of work, bounded retry, job order, payload schema."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from harness.database.connect import (
    DB_TRANSACTION_GIVE_UPS,
    DB_TRANSACTION_RETRIES,
    in_transaction,
    is_postgres,
    unit_of_work,
)
from harness.database.models import Job, Run
from harness.jobs.queue import SCHEMA_FIELD, JobKind, enqueue
from harness.jobs.worker import Worker
from tests.support.api import world

pytestmark = [pytest.mark.tier1]

BODY = {"task": "summarise the workspace"}


def _sample(counter: Any, **labels: str) -> float:
    return float(counter.labels(**labels)._value.get())


def test_post_run_sheds_503_with_retry_after_over_the_queue_limit_and_recovers(
    make_runtime: Any, database_url: str
) -> None:
    with world(make_runtime, database_url, max_queue_depth=2, shed_retry_after_seconds=7) as w:
        assert [w.post("run", "alice", BODY).status_code for _ in range(2)] == [202, 202]
        shed = w.post("run", "alice", BODY, **{"Idempotency-Key": "shed-1"})
        assert shed.status_code == 503
        assert shed.headers["content-type"].startswith("application/problem+json")
        assert shed.headers["Retry-After"] == "7"
        assert shed.json()["type"].endswith("overloaded")
        with unit_of_work(w.rt.sessions) as s:
            assert len(s.execute(select(Run.id)).all()) == 2  # nothing half-created
        # The refused key was released: the same key is accepted once the queue drains.
        w.drain()
        assert w.post("run", "alice", BODY, **{"Idempotency-Key": "shed-1"}).status_code == 202


def test_one_tenant_cannot_fill_the_queue_for_another(make_runtime: Any, database_url: str) -> None:
    with world(make_runtime, database_url, max_tenant_in_flight=1) as w:
        assert w.post("run", "alice", BODY).status_code == 202
        refused = w.post("run", "alice", BODY)
        assert refused.status_code == 503 and "tenant" in refused.json()["detail"]
        assert w.post("run", "gina", BODY).status_code == 202


def test_reads_do_not_queue_behind_a_writer_on_sqlite(make_runtime: Any, sqlite_database_url: str) -> None:
    with world(make_runtime, sqlite_database_url) as w:
        holding, release = threading.Event(), threading.Event()

        def writer() -> None:
            with unit_of_work(w.rt.sessions) as s:  # BEGIN IMMEDIATE: holds the write lock
                s.execute(text("UPDATE audit_head SET next_seq = next_seq WHERE id = 1"))
                holding.set()
                release.wait(120)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            assert holding.wait(60), "the writer never took the lock"
            # Authentication and the run lookup are read-only: answered while the lock is held
            # (with BEGIN IMMEDIATE they would wait out the 30 s busy timeout and fail).
            answer = w.get("runs/run_missing", "alice")
            still_held = not release.is_set() and thread.is_alive()
        finally:
            release.set()
            thread.join(60)
        assert answer.status_code == 404
        assert still_held


def _locked() -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))


def test_retryable_failures_rerun_the_unit_of_work_bounded_and_counted(
    make_runtime: Any, sqlite_database_url: str
) -> None:
    rt = make_runtime(sqlite_database_url)
    calls: list[int] = []

    def flaky(session: Any) -> int:
        calls.append(1)
        if len(calls) < 3:
            raise _locked()
        return int(session.execute(text("SELECT 41 + 1")).scalar_one())

    before = _sample(DB_TRANSACTION_RETRIES, reason="sqlite_locked")
    assert in_transaction(rt.sessions, flaky, sleep=lambda _: None) == 42
    assert len(calls) == 3
    assert _sample(DB_TRANSACTION_RETRIES, reason="sqlite_locked") == before + 2

    gave_up = _sample(DB_TRANSACTION_GIVE_UPS, reason="sqlite_locked")
    calls.clear()

    def always(session: Any) -> None:
        calls.append(1)
        raise _locked()

    with pytest.raises(OperationalError, match="database is locked"):
        in_transaction(rt.sessions, always, attempts=4, sleep=lambda _: None)
    assert len(calls) == 4
    assert _sample(DB_TRANSACTION_GIVE_UPS, reason="sqlite_locked") == gave_up + 1

    calls.clear()

    def broken(session: Any) -> None:
        calls.append(1)
        session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(OperationalError, match="no_such_table"):
        in_transaction(rt.sessions, broken, sleep=lambda _: None)
    assert len(calls) == 1, "a non-retryable error must not be retried"


def test_job_order_is_increasing_and_from_a_sequence_on_postgres(
    make_runtime: Any, database_url: str, run_factory: Any
) -> None:
    rt = make_runtime(database_url)
    run_id = run_factory(rt)
    with unit_of_work(rt.sessions) as s:
        for n in range(3):
            enqueue(s, rt, kind=JobKind.EXECUTE_RUN, run_id=run_id, dedupe_key=f"{run_id}:extra{n}")
    with unit_of_work(rt.sessions) as s:
        keys = list(s.execute(select(Job.order_key).order_by(Job.created_at, Job.order_key)).scalars())
        assert keys == sorted(keys) and len(set(keys)) == len(keys) == 4
        if is_postgres(rt.engine):
            default = s.execute(
                text(
                    "SELECT column_default FROM information_schema.columns "
                    "WHERE table_name = 'jobs' AND column_name = 'order_key' "
                    "AND table_schema = current_schema()"
                )
            ).scalar_one()
            assert "nextval('jobs_order_key_seq'" in default


def test_jobs_carry_a_schema_version_old_ones_run_and_newer_ones_are_refused(
    make_runtime: Any, database_url: str
) -> None:
    with world(make_runtime, database_url, job_max_attempts=1) as w:
        old = w.post("run", "alice", BODY).json()["run_id"]
        newer = w.post("run", "gina", BODY).json()["run_id"]
        with unit_of_work(w.rt.sessions) as s:
            jobs = {j.run_id: j for j in s.execute(select(Job)).scalars()}
            assert jobs[old].payload[SCHEMA_FIELD] == 1
            jobs[old].payload = {}  # what a previous release enqueued (unversioned, v0)
            jobs[newer].payload = {SCHEMA_FIELD: 99}
        worker = Worker(w.rt, worker_id="w1")
        while worker.run_once():
            pass
        with unit_of_work(w.rt.sessions) as s:
            runs = {r.id: r for r in s.execute(select(Run)).scalars()}
            refused = s.execute(select(Job).where(Job.run_id == newer)).scalar_one()
        assert runs[old].status == "SUCCEEDED"
        assert refused.status == "dead"
        error = refused.last_error or ""
        assert "schema 99" in error and "upgrade the worker" in error
        assert runs[newer].status == "FAILED"
