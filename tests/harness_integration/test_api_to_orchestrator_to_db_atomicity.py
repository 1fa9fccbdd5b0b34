"""A DB write fails after orchestration starts: nothing orphaned, nothing half-written.

Test plan scenario "DB write fails after orchestration starts". The injector makes the
driver itself fail one statement (``tests.support.faults.fail_statements``), so SQLAlchemy
rolls back exactly as on a real disk or connection failure. Controller → run service →
queue must commit a run, its audit entry and its first job together or not at all; the
API answers problem+json without internals; a retry of the same request works.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs

from harness.database.connect import unit_of_work
from harness.database.models import AuditEntry, IdempotencyKey, Job, Run, RunTransition
from tests.support.api import World, world
from tests.support.faults import fail_statements, frozen_clock, param_is

pytestmark = [pytest.mark.tier1]

SCRIPT = Path(__file__).parent / "data" / "plain_script.yaml"
BODY = {"task": "tidy the workspace"}
INTERNALS = ("INSERT", "UPDATE", "SQL", "sqlite", "psycopg", "OperationalError", "injected", "Traceback")
# The run's error may name the exception type; statements, parameters and driver text stay server-side.
RUN_ERROR_INTERNALS = ("INSERT", "[SQL", "parameters", "sqlite3", "psycopg", "injected", "Traceback")


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    # Captured, not rendered: structlog's default console renderer pretty-prints every local
    # of an exception's frames, which takes seconds per 500 and proves nothing here.
    with capture_logs() as captured:
        yield captured


@pytest.fixture
def w(make_runtime: Any, database_url: str, logs: list[dict[str, Any]]) -> Iterator[World]:
    with world(make_runtime, database_url, script=SCRIPT) as it:
        yield it


@pytest.fixture
def frozen(w: World) -> Iterator[Any]:
    # After the app is built: FastAPI builds its schemas from ``datetime``, not freezegun's fake.
    with frozen_clock() as clock:
        yield clock


def _count(w: World, model: Any) -> int:
    with unit_of_work(w.rt.sessions) as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def _snapshot(w: World) -> dict[str, int]:
    return {m.__tablename__: _count(w, m) for m in (Run, Job, AuditEntry, RunTransition, IdempotencyKey)}


def _assert_runs_and_jobs_pair_up(w: World) -> None:
    """Every run has its start job and every job its run: no orphan on either side."""
    with unit_of_work(w.rt.sessions) as s:
        run_ids = set(s.execute(select(Run.id)).scalars())
        job_runs = list(s.execute(select(Job.run_id).where(Job.dedupe_key.like("%:start"))).scalars())
        created = set(
            s.execute(select(AuditEntry.target).where(AuditEntry.action == "run.created")).scalars()
        )
    assert sorted(job_runs) == sorted(run_ids)
    assert created == {f"run/{r}" for r in run_ids}


def _assert_internal_problem(resp: Any) -> None:
    assert resp.status_code == 500, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["type"].endswith("/internal-error")
    assert body["status"] == 500
    leaked = [word for word in INTERNALS if word.lower() in resp.text.lower()]
    assert leaked == [], f"the problem document leaks internals: {leaked}: {resp.text}"


def _status(w: World, run_id: str) -> str:
    with unit_of_work(w.rt.sessions) as s:
        return s.get_one(Run, run_id).status


CREATE_STEPS = [
    pytest.param("INSERT INTO runs", id="run-row"),
    pytest.param("INSERT INTO audit_entries", id="audit-entry"),
    pytest.param("INSERT INTO jobs", id="first-job"),
    pytest.param("UPDATE idempotency_keys", id="idempotency-record"),
]


@pytest.mark.parametrize("statement", CREATE_STEPS)
def test_failed_write_during_run_creation_leaves_nothing_behind(
    w: World, logs: list[dict[str, Any]], statement: str
) -> None:
    before = _snapshot(w)

    with fail_statements(w.rt.engine, statement, times=1) as fault:
        resp = w.post("run", "alice", BODY, **{"Idempotency-Key": f"create-{statement}"})

    assert len(fault.failed) == 1
    _assert_internal_problem(resp)
    # The details went to the server log instead.
    assert [(e["event"], e["error"]) for e in logs if e["log_level"] == "error"] == [
        ("unhandled error", "OperationalError")
    ]
    after = _snapshot(w)
    assert {k: after[k] for k in ("runs", "jobs", "audit_entries", "run_transitions")} == {
        k: before[k] for k in ("runs", "jobs", "audit_entries", "run_transitions")
    }
    assert w.drain() == 0  # no task to execute without its run
    assert w.sim.requests == []

    retried = w.post("run", "alice", BODY)  # without the key: a plain retry
    assert retried.status_code == 202, retried.text
    assert w.drain() == 1
    assert _status(w, retried.json()["run_id"]) == "SUCCEEDED"
    _assert_runs_and_jobs_pair_up(w)


def test_retry_with_the_same_idempotency_key_after_a_db_failure_is_accepted(w: World) -> None:
    """The idempotency claim of a failed request is released, whatever the failure was."""
    headers = {"Idempotency-Key": "retry-me-after-a-db-failure"}
    with fail_statements(w.rt.engine, "INSERT INTO jobs", times=1):
        failed = w.post("run", "alice", BODY, **headers)
    _assert_internal_problem(failed)
    with unit_of_work(w.rt.sessions) as s:
        left = [k.state for k in s.execute(select(IdempotencyKey)).scalars()]
    assert left == [], f"the failed request's idempotency claim was never released: {left}"

    retried = w.post("run", "alice", BODY, **headers)

    assert retried.status_code == 202, retried.text
    replayed = w.post("run", "alice", BODY, **headers)
    assert replayed.status_code == 202
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["run_id"] == retried.json()["run_id"]
    assert _count(w, Run) == 1
    _assert_runs_and_jobs_pair_up(w)


def _start_transition() -> Any:
    # PENDING -> RUNNING only; the dead-letter PENDING -> FAILED write must still succeed.
    return param_is("to_status", 3, "RUNNING")


def test_failed_start_of_orchestration_is_rolled_back_and_retried(w: World, frozen: Any) -> None:
    accepted = w.post("run", "alice", BODY)
    assert accepted.status_code == 202
    run_id = accepted.json()["run_id"]

    with fail_statements(w.rt.engine, "INSERT INTO run_transitions", when=_start_transition(), times=1):
        assert w.drain() == 1

    # The worker's first unit of work rolled back whole: still PENDING, no transition, no audit.
    view = w.get(f"runs/{run_id}", "alice").json()
    assert view["status"] == "PENDING" and view["transitions"] == [] and view["steps"] == []
    with unit_of_work(w.rt.sessions) as s:
        job = s.execute(select(Job).where(Job.run_id == run_id)).scalar_one()
        audit = list(
            s.execute(select(AuditEntry.action).where(AuditEntry.target == f"run/{run_id}")).scalars()
        )
        assert (job.status, job.attempts, job.lease_owner) == ("queued", 1, None)
        assert job.last_error is not None and "OperationalError" in job.last_error
    assert audit == ["run.created"]
    assert w.sim.requests == []  # the model is never called for a run that did not start

    frozen.tick(timedelta(seconds=w.rt.settings.job_retry_delay_seconds))
    assert w.drain() == 1
    done = w.get(f"runs/{run_id}", "alice").json()
    assert done["status"] == "SUCCEEDED"
    assert [(t["from"], t["to"]) for t in done["transitions"]] == [
        ("PENDING", "RUNNING"),
        ("RUNNING", "SUCCEEDED"),
    ]
    assert len(w.sim.requests) == 1
    _assert_runs_and_jobs_pair_up(w)


def test_start_that_never_succeeds_ends_failed_with_a_clean_reason(w: World, frozen: Any) -> None:
    accepted = w.post("run", "alice", BODY)
    run_id = accepted.json()["run_id"]

    with fail_statements(w.rt.engine, "INSERT INTO run_transitions", when=_start_transition()) as fault:
        for _ in range(w.rt.settings.job_max_attempts):
            assert w.drain() == 1
            frozen.tick(timedelta(minutes=10))
        assert w.drain() == 0  # dead-lettered: nothing left to pick up

    assert len(fault.failed) == w.rt.settings.job_max_attempts
    with unit_of_work(w.rt.sessions) as s:
        job = s.execute(select(Job).where(Job.run_id == run_id)).scalar_one()
        assert job.status == "dead"
    view = w.get(f"runs/{run_id}", "alice").json()
    assert view["status"] == "FAILED"  # no PENDING run left behind a dead job
    assert [(t["from"], t["to"]) for t in view["transitions"]] == [("PENDING", "FAILED")]
    assert view["error"].startswith(f"dead-lettered after {w.rt.settings.job_max_attempts} attempts")
    leaked = [word for word in RUN_ERROR_INTERNALS if word.lower() in view["error"].lower()]
    assert leaked == [], f"the run's public error leaks database internals: {view['error']!r}"
    assert w.sim.requests == []
