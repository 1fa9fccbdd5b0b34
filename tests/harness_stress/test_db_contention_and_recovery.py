"""Test plan: lock-heavy load while runs are active, and a worker killed mid-run.

Four ``harness worker`` processes drain the queue while a writer thread hammers the audit
head lock (the hottest row: every audited action takes it); afterwards every run is terminal
exactly once, every job done exactly once, no step recorded twice, one provider call per run,
and the audit chain verifies (no partial commit left a gap). A worker SIGKILLed in the middle
of a run is recovered by lease expiry: another worker resumes the run and finishes it, and
nothing the killed worker committed is repeated. SQLite and PostgreSQL.
``HARNESS_STRESS_SCALE`` shrinks the counts while developing (the nightly runs them at 1).
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from harness.audit import append_audit, verify_log
from harness.database.connect import in_transaction, unit_of_work
from harness.database.models import Job, Run, Step
from replay.provider_sim import start_simulator
from tests.harness_stress import _workers as w
from tests.support import procs

pytestmark = [pytest.mark.tier2, pytest.mark.timeout(3600)]

SCRIPT = Path(__file__).resolve().parent / "data" / "four_call_script.yaml"
WORKERS = 4


def _env(tmp_path: Path, database_url: str, base_url: str, **extra: str) -> dict[str, str]:
    env = procs.base_env(tmp_path / ".harness", database_url)
    env.update({"HARNESS_PROVIDER_BASE_URL": base_url, **extra})
    return env


def test_four_workers_under_lock_contention_do_everything_exactly_once(
    tmp_path: Path, database_url: str, make_runtime: Any
) -> None:
    count = w.scaled(5_000 * WORKERS, minimum=40)
    rt = make_runtime(database_url)
    who = w.principal(rt, "acme")
    run_ids = w.create_runs(rt, who, count, task="summarise the workspace")
    stop = threading.Event()
    appended = 0

    def hammer() -> None:
        nonlocal appended
        while not stop.is_set():
            in_transaction(
                rt.sessions,
                lambda s: append_audit(
                    s, rt, actor="stress", tenant="acme", action="stress.lock", target="x"
                ),
            )
            appended += 1

    with start_simulator(SCRIPT) as sim, ExitStack() as stack:
        env = _env(tmp_path, database_url, sim.base_url)
        for n in range(WORKERS):
            stack.enter_context(procs.worker(env, tmp_path / f"worker-{n}.log"))
        writer = threading.Thread(target=hammer)
        writer.start()
        try:
            w.wait_for(f"{count} runs to drain", lambda: w.all_terminal(rt), deadline_seconds=60 + count)
        finally:
            stop.set()
            writer.join(60)
        calls = w.provider_calls(sim)
    w.assert_exactly_once(rt, run_ids, steps_per_run=1)
    assert calls == count, "a run called the provider twice (or not at all)"
    assert appended > 0
    report = verify_log(rt)
    assert report.ok, report.message


def test_a_worker_killed_mid_run_is_recovered_by_lease_expiry(
    tmp_path: Path, database_url: str, make_runtime: Any
) -> None:
    rt = make_runtime(database_url)
    who = w.principal(rt, "acme")
    (run_id,) = w.create_runs(rt, who, 1, task="a slow run")
    with start_simulator(SCRIPT) as sim:
        env = _env(tmp_path, database_url, sim.base_url, HARNESS_JOB_LEASE_SECONDS="3")
        args = [str(procs.BIN / "harness"), "worker", "--poll", "0.1"]
        with procs.process(args, env, tmp_path / "doomed.log") as doomed:
            # The second model call answers after 4 s: kill the worker while it waits for it.
            w.wait_for(
                "the slow model call", lambda: w.provider_calls(sim) >= 2, deadline_seconds=120, poll=0.05
            )
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait(30)
        with unit_of_work(rt.sessions) as s:
            job = s.execute(select(Job).where(Job.run_id == run_id)).scalar_one()
            assert (job.status, job.attempts) == ("leased", 1)
            killed_owner = job.lease_owner
            committed_before = [
                st.seq for st in s.execute(select(Step).where(Step.run_id == run_id)).scalars()
            ]
        with procs.worker(env, tmp_path / "rescuer.log"):
            w.wait_for("the rescuer to finish the run", lambda: w.all_terminal(rt), deadline_seconds=180)
        calls = w.provider_calls(sim)
    with unit_of_work(rt.sessions) as s:
        job = s.execute(select(Job).where(Job.run_id == run_id)).scalar_one()
        run = s.get_one(Run, run_id)
        steps = [
            st.seq for st in s.execute(select(Step).where(Step.run_id == run_id).order_by(Step.seq)).scalars()
        ]
    assert run.status == "SUCCEEDED"
    assert (job.status, job.attempts) == ("done", 2) and job.lease_owner != killed_owner
    assert steps[: len(committed_before)] == sorted(committed_before), "a committed step was rewritten"
    assert steps == list(range(steps[0], steps[0] + len(steps))), "a step is missing or repeated"
    w.assert_exactly_once(rt, [run_id], steps_per_run=len(steps))
    # The killed call never committed, so the rescuer makes it again: 1 + 1 (lost) + 1.
    assert calls == 3
