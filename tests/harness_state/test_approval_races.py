"""Simultaneous approve and reject of one run: exactly one wins, on SQLite and on PostgreSQL.

100 runs wait at the write_artifact gate. For each, an approver (bob) and another approver
(dave) call the service's ``decide`` from two threads released by one barrier, each in its own
session. Exactly one decision lands (the other is an illegal transition), exactly one
``approval.decided`` entry is audited, the final state follows the winner, and the audit chain
still verifies.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from harness.accounts import Principal
from harness.audit import verify_log
from harness.database.connect import unit_of_work
from harness.database.models import Approval, AuditEntry, Job, Run, RunTransition
from harness.errors import IllegalTransition
from harness.runs.service import decide
from tests.support.api import World, decision_body, world

pytestmark = [pytest.mark.tier1, pytest.mark.security, pytest.mark.timeout(300)]

RACES = 100
DECIDERS = {"approve": "bob", "reject": "dave"}
# The model's first turn asks for the gated tool, so every run stops at the gate after one call.
GATE_FIRST = {
    "format_version": 1,
    "created": 1767225600,
    "conversations": [],
    "default": {
        "turns": [
            {"tool_calls": [{"name": "write_artifact", "arguments": {"path": "out.md", "content": "ok\n"}}]},
            {"content": "Done."},
        ]
    },
}


@pytest.fixture
def w(make_runtime: Any, database_url: str, tmp_path: Path) -> Iterator[World]:
    script = tmp_path / "gate_first.yaml"
    script.write_text(yaml.safe_dump(GATE_FIRST))
    with world(make_runtime, database_url, script=script) as it:
        yield it


def _principal(w: World, name: str) -> Principal:
    key = w.keys[name]
    return Principal(key_id=key.key_id, tenant_id=key.tenant_id, roles=frozenset(key.roles), name=name)


def _runs_at_the_gate(w: World, n: int) -> list[str]:
    ids = []
    for i in range(n):
        resp = w.post("run", "alice", {"task": f"write the summary #{i}"})
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["run_id"])
    assert w.drain() == n
    with unit_of_work(w.rt.sessions) as s:
        statuses = Counter(s.execute(select(Run.status)).scalars())
    assert statuses == {"AWAITING_APPROVAL": n}
    return ids


def test_simultaneous_approve_and_reject_have_one_winner(w: World) -> None:
    run_ids = _runs_at_the_gate(w, RACES)
    principals = {decision: _principal(w, who) for decision, who in DECIDERS.items()}
    barriers = {run_id: threading.Barrier(2) for run_id in run_ids}

    def attempt(run_id: str, decision: str) -> tuple[str, str, str]:
        named = decision_body(w.rt, run_id, decision)
        barriers[run_id].wait(timeout=60)
        try:
            result = decide(
                w.rt,
                principals[decision],
                run_id=run_id,
                decision=decision,
                reason=f"race {decision}",
                approval_id=named["approval_id"],
                args_sha256=named["args_sha256"],
            )
        except IllegalTransition:
            return run_id, decision, "lost"
        assert result["decision"] == {"approve": "approved", "reject": "rejected"}[decision]
        return run_id, decision, "won"

    jobs = [(run_id, decision) for run_id in run_ids for decision in DECIDERS]
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda job: attempt(*job), jobs))

    winners: dict[str, str] = {}
    for run_id, decision, outcome in outcomes:
        if outcome == "won":
            assert run_id not in winners, f"{run_id}: both approve and reject succeeded"
            winners[run_id] = decision
    assert sorted(winners) == sorted(run_ids), "a race had no winner"

    w.drain()
    expected = {
        "approve": ("approved", "SUCCEEDED", "APPROVED"),
        "reject": ("rejected", "REJECTED", "REJECTED"),
    }
    with unit_of_work(w.rt.sessions) as s:
        decided = Counter(
            s.execute(select(AuditEntry.target).where(AuditEntry.action == "approval.decided")).scalars()
        )
        for run_id, decision in winners.items():
            approval_status, final, after_gate = expected[decision]
            run = s.get_one(Run, run_id)
            approvals = s.execute(select(Approval).where(Approval.run_id == run_id)).scalars().all()
            left_gate = (
                s.execute(
                    select(RunTransition.to_status).where(
                        RunTransition.run_id == run_id, RunTransition.from_status == "AWAITING_APPROVAL"
                    )
                )
                .scalars()
                .all()
            )
            resumes = (
                s.execute(
                    select(Job.id).where(Job.run_id == run_id, Job.dedupe_key.like(f"{run_id}:resume:%"))
                )
                .scalars()
                .all()
            )
            assert decided[f"run/{run_id}"] == 1, run_id
            assert run.status == final, (run_id, decision, run.status, run.error)
            assert [(a.status, a.decided_by) for a in approvals] == [
                (approval_status, principals[decision].key_id)
            ]
            assert left_gate == [after_gate]
            assert len(resumes) == (1 if decision == "approve" else 0)
    report = verify_log(w.rt)
    assert report.ok, report.message
    print(f"\nwinners: {dict(Counter(winners.values()))}")
