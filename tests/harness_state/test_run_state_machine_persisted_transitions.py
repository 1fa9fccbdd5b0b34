"""Test plan: the state machine's rules hold through the persisted service (SQLite and PostgreSQL).

An illegal transition changes neither the run, its transition history nor the audit log.
(The pure table tests are tier 0 in test_run_state_machine_invalid_transition.py.)
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from harness.database.connect import unit_of_work
from harness.database.models import AuditEntry, Run, RunTransition
from harness.errors import IllegalTransition
from harness.runs.service import transition
from harness.runs.state import RunStatus, is_allowed

pytestmark = [pytest.mark.tier1]

S = RunStatus


def _counts(session: Any, run_id: str) -> tuple[str, int, int]:
    run = session.get_one(Run, run_id)
    transitions = session.execute(
        select(func.count()).select_from(RunTransition).where(RunTransition.run_id == run_id)
    ).scalar_one()
    audit = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    return run.status, transitions, audit


@pytest.mark.parametrize(
    "path",
    [
        [S.RUNNING, S.FAILED],
        [S.RUNNING, S.AWAITING_APPROVAL, S.APPROVED],
        [S.RUNNING, S.SUCCEEDED],
        [S.RUNNING, S.AWAITING_APPROVAL, S.REJECTED],
    ],
    ids="->".join,
)
def test_persisted_illegal_transition_changes_nothing(
    path: list[RunStatus], database_url: str, make_runtime: Any, run_factory: Any
) -> None:
    rt = make_runtime(database_url)
    run_id = run_factory(rt)
    for target in path:
        with unit_of_work(rt.sessions) as session:
            transition(session, rt, session.get_one(Run, run_id), target, reason="test", actor="test")
    with unit_of_work(rt.sessions) as session:
        before = _counts(session, run_id)
    current = path[-1]
    for target in RunStatus:
        if is_allowed(current, target):
            continue
        with pytest.raises(IllegalTransition), unit_of_work(rt.sessions) as session:
            transition(session, rt, session.get_one(Run, run_id), target, reason="illegal", actor="test")
        with unit_of_work(rt.sessions) as session:
            assert _counts(session, run_id) == before
    with unit_of_work(rt.sessions) as session:
        rows = (
            session.execute(
                select(RunTransition).where(RunTransition.run_id == run_id).order_by(RunTransition.seq)
            )
            .scalars()
            .all()
        )
    assert [(r.from_status, r.to_status) for r in rows] == list(
        zip([S.PENDING, *path[:-1]], path, strict=True)
    )
    assert [r.seq for r in rows] == list(range(len(path)))
