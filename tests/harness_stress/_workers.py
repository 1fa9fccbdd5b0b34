"""Shared by the stress tests: worker processes, bulk run creation, exactly-once checks, scaling."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from harness.accounts import Principal, create_tenant, issue_key
from harness.database.connect import unit_of_work
from harness.database.models import Job, Run, RunTransition, Step
from harness.runs.service import RunSpec, create_run
from harness.runs.state import TERMINAL
from harness.runtime import Runtime


def scaled(full: int, *, minimum: int = 1) -> int:
    """``full`` times HARNESS_STRESS_SCALE (default 1: the sizes the test plan names)."""
    factor = float(os.environ.get("HARNESS_STRESS_SCALE", "1"))
    return max(minimum, int(full * factor))


def principal(rt: Runtime, tenant_id: str, *, files: dict[str, str] | None = None) -> Principal:
    create_tenant(rt, tenant_id=tenant_id, name=tenant_id)
    key = issue_key(rt, tenant_id=tenant_id, name="stress", roles=["submitter"])
    root = rt.settings.tenant_files_dir / tenant_id
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return Principal(key_id=key.key_id, tenant_id=tenant_id, roles=frozenset(key.roles), name="stress")


def create_runs(rt: Runtime, who: Principal, count: int, *, task: str, batch: int = 200) -> list[str]:
    """``count`` PENDING runs with their first job, ``batch`` per transaction."""
    ids: list[str] = []
    while len(ids) < count:
        with unit_of_work(rt.sessions) as session:
            for _ in range(min(batch, count - len(ids))):
                ids.append(create_run(session, rt, who, RunSpec(task=task, model=None, tools=None)).id)
    return ids


def wait_for(what: str, check: Callable[[], bool], *, deadline_seconds: float, poll: float = 0.25) -> None:
    deadline = time.monotonic() + deadline_seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {deadline_seconds:.0f}s waiting for {what}")
        time.sleep(poll)


def all_terminal(rt: Runtime) -> bool:
    with unit_of_work(rt.sessions, read_only=True) as session:
        open_jobs = session.execute(
            select(func.count()).select_from(Job).where(Job.status.in_(["queued", "leased"]))
        ).scalar_one()
        return int(open_jobs) == 0


def assert_exactly_once(rt: Runtime, run_ids: list[str], *, steps_per_run: int) -> Counter[str]:
    """Every run terminal once, every job done once, no step recorded twice; returns run statuses."""
    with unit_of_work(rt.sessions, read_only=True) as session:
        statuses = Counter(session.execute(select(Run.status)).scalars())
        terminal_entries = Counter(
            session.execute(
                select(RunTransition.run_id).where(RunTransition.to_status.in_([str(s) for s in TERMINAL]))
            ).scalars()
        )
        jobs = Counter(session.execute(select(Job.status)).scalars())
        steps = Counter(session.execute(select(Step.run_id)).scalars())
    assert sum(statuses.values()) == len(run_ids)
    assert set(statuses) == {"SUCCEEDED"}, statuses
    assert terminal_entries == dict.fromkeys(run_ids, 1), "a run reached a terminal state twice (or never)"
    assert jobs == {"done": len(run_ids)}, jobs
    assert steps == dict.fromkeys(run_ids, steps_per_run), "a step was recorded twice or missing"
    return statuses


def provider_calls(sim: Any) -> int:
    return sum(1 for r in sim.requests if r.path.endswith("/chat/completions"))
