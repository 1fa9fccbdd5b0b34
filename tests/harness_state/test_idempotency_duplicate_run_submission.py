"""Test plan: the same Idempotency-Key submitted concurrently creates exactly one run.

A real ``harness serve`` process on loopback takes 1000 concurrent POST /run with one key and
one body (64 in flight). Every answer is the first 202, a replayed 202 or a 409 "in flight";
never a 5xx. After the worker drains, there is one run, one job and one provider call.
Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from harness.database.connect import unit_of_work
from harness.database.models import IdempotencyKey, Job, Run
from replay.provider_sim import start_simulator
from tests.support import procs

pytestmark = [pytest.mark.tier1, pytest.mark.security, pytest.mark.e2e, pytest.mark.timeout(300)]

SCRIPT = Path(__file__).resolve().parent.parent / "harness_e2e" / "data" / "journey_script.yaml"
REQUESTS = 1000
IN_FLIGHT = 64
BODY = {"task": "summarise the workspace", "tools": ["list_files"]}


@dataclass(frozen=True)
class Answer:
    status: int
    replayed: bool
    content_type: str
    body: dict[str, Any]


def _post(client: httpx.Client, token: str, key: str) -> Answer:
    resp = client.post(
        "/api/harness/run",
        json=BODY,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
    )
    try:
        body = resp.json()
    except ValueError:
        body = {"raw": resp.text[:500]}
    return Answer(
        status=resp.status_code,
        replayed=resp.headers.get("Idempotent-Replayed") == "true",
        content_type=resp.headers.get("content-type", ""),
        body=body,
    )


def _burst(base: str, token: str, key: str) -> list[Answer]:
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    with (
        httpx.Client(base_url=base, timeout=60, limits=limits) as client,
        ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool,
    ):
        return list(pool.map(lambda _: _post(client, token, key), range(REQUESTS)))


def test_one_key_many_concurrent_submissions_make_one_run(
    tmp_path: Path, database_url: str, make_runtime: Any
) -> None:
    env = procs.base_env(tmp_path / ".harness", database_url)
    # The burst is one client on purpose; rate limiting is tested elsewhere.
    env["HARNESS_RATE_LIMIT_PER_KEY"] = "100000/minute"
    env["HARNESS_RATE_LIMIT_PER_TENANT"] = "100000/minute"
    key = "order-7f3a-one-logical-request"
    with start_simulator(SCRIPT) as sim:
        env["HARNESS_PROVIDER_BASE_URL"] = sim.base_url
        created = json.loads(
            procs.harness(["tenants", "create", "acme", "--key", "alice:submitter"], env).stdout
        )
        token = created["keys"][0]["token"]
        with procs.api_server(env, tmp_path / "api.log") as base:
            answers = _burst(base, token, key)
        drained = procs.harness(["worker", "--once"], env)
        provider_calls = [r for r in sim.requests if r.path.endswith("/chat/completions")]

    statuses = Counter(a.status for a in answers)
    assert not [a for a in answers if a.status >= 500], (statuses, (tmp_path / "api.log").read_text()[-3000:])
    assert set(statuses) <= {202, 409}, statuses

    accepted = [a for a in answers if a.status == 202]
    first = [a for a in accepted if not a.replayed]
    assert len(first) == 1, f"{len(first)} requests created a run for one Idempotency-Key"
    assert {a.body["run_id"] for a in accepted} == {first[0].body["run_id"]}
    assert all(a.body == first[0].body for a in accepted)
    for conflict in (a for a in answers if a.status == 409):
        assert conflict.content_type.startswith("application/problem+json")
        assert conflict.body["type"].endswith("/idempotency-conflict"), conflict.body

    assert drained.stdout.strip() == "ran 1 job(s)", drained.stdout + drained.stderr
    assert len(provider_calls) == 1
    rt = make_runtime(database_url)
    with unit_of_work(rt.sessions) as session:
        runs = session.execute(select(Run)).scalars().all()
        jobs = session.execute(select(func.count()).select_from(Job)).scalar_one()
        stored = session.execute(select(IdempotencyKey)).scalars().all()
    assert [r.id for r in runs] == [first[0].body["run_id"]]
    assert runs[0].status == "SUCCEEDED"
    assert jobs == 1
    assert [(k.key, k.state, k.response_status) for k in stored] == [(key, "completed", 202)]
    print(f"\n{database_url.split(':', maxsplit=1)[0]}: {dict(statuses)}")
