"""Test plan: a burst of concurrent run submissions for one tenant and user.

300 submissions, each with its own Idempotency-Key and the same body, hit a real
``harness serve`` process (64 in flight); two ``harness worker`` processes then compete for
the queue. No 5xx, one run per key with exactly one first job, every job done, every run
executed exactly once (one provider call each). Throughput is printed, never asserted.
Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from harness.database.connect import unit_of_work
from harness.database.models import IdempotencyKey, Job, Run
from harness.jobs.queue import pending_count
from replay.provider_sim import start_simulator
from tests.support import procs

pytestmark = [pytest.mark.tier2, pytest.mark.e2e, pytest.mark.timeout(600)]

SCRIPT = Path(__file__).resolve().parent.parent / "harness_e2e" / "data" / "journey_script.yaml"
SUBMISSIONS = 300
IN_FLIGHT = 64
WORKERS = 2
DRAIN_DEADLINE_SECONDS = 300
BODY = {"task": "summarise the workspace"}


def _submit(client: httpx.Client, token: str, i: int) -> tuple[str, int, dict[str, Any]]:
    key = f"burst-{i:04d}"
    resp = client.post(
        "/api/harness/run", json=BODY, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    )
    try:
        body = resp.json()
    except ValueError:
        body = {"raw": resp.text[:500]}
    return key, resp.status_code, body


def _drained(rt: Any) -> tuple[bool, Counter[str]]:
    with unit_of_work(rt.sessions) as s:
        statuses = Counter(s.execute(select(Run.status)).scalars())
        return pending_count(s) == 0 and set(statuses) == {"SUCCEEDED"}, statuses


def test_burst_of_distinct_submissions(tmp_path: Path, database_url: str, make_runtime: Any) -> None:
    env = procs.base_env(tmp_path / ".harness", database_url)
    # One client on purpose: the burst measures contention, not the rate limiter.
    env["HARNESS_RATE_LIMIT_PER_KEY"] = "100000/minute"
    env["HARNESS_RATE_LIMIT_PER_TENANT"] = "100000/minute"
    rt = make_runtime(database_url)
    with start_simulator(SCRIPT) as sim:
        env["HARNESS_PROVIDER_BASE_URL"] = sim.base_url
        created = json.loads(
            procs.harness(["tenants", "create", "acme", "--key", "alice:submitter"], env).stdout
        )
        token = created["keys"][0]["token"]
        with procs.api_server(env, tmp_path / "api.log") as base:
            limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
            started = time.perf_counter()
            with (
                httpx.Client(base_url=base, timeout=60, limits=limits) as client,
                ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool,
            ):
                answers = list(pool.map(lambda i: _submit(client, token, i), range(SUBMISSIONS)))
            submit_seconds = time.perf_counter() - started

        started = time.perf_counter()
        with ExitStack() as stack:
            for n in range(WORKERS):
                stack.enter_context(procs.worker(env, tmp_path / f"worker-{n}.log"))
            deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
            done, statuses = _drained(rt)
            while not done and time.monotonic() < deadline:
                time.sleep(0.2)
                done, statuses = _drained(rt)
        drain_seconds = time.perf_counter() - started
        provider_calls = sum(1 for r in sim.requests if r.path.endswith("/chat/completions"))

    codes = Counter(status for _, status, _ in answers)
    assert codes == {202: SUBMISSIONS}, (codes, (tmp_path / "api.log").read_text()[-3000:])
    run_ids = [body["run_id"] for _, _, body in answers]
    assert len(set(run_ids)) == SUBMISSIONS, "two keys were answered with the same run"
    assert done, f"queue did not drain: {dict(statuses)}"

    with unit_of_work(rt.sessions) as s:
        persisted = set(s.execute(select(Run.id)).scalars())
        first_jobs = Counter(
            s.execute(select(Job.run_id).where(Job.dedupe_key == Job.run_id + ":start")).scalars()
        )
        job_states = Counter(s.execute(select(Job.status)).scalars())
        keys = s.execute(select(func.count()).select_from(IdempotencyKey)).scalar_one()
    assert persisted == set(run_ids)
    assert first_jobs == dict.fromkeys(run_ids, 1)
    assert job_states == {"done": SUBMISSIONS}
    assert keys == SUBMISSIONS
    assert provider_calls == SUBMISSIONS, "a run was executed more than once (or not at all)"

    backend = database_url.split(":", maxsplit=1)[0]
    print(
        f"\n{backend}: {SUBMISSIONS} submissions in {submit_seconds:.2f}s "
        f"({SUBMISSIONS / submit_seconds:.0f}/s, {IN_FLIGHT} in flight); "
        f"{WORKERS} workers drained in {drain_seconds:.2f}s ({SUBMISSIONS / drain_seconds:.0f} runs/s)"
    )
