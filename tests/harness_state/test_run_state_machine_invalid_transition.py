"""Test plan: transition FAILED -> RUNNING or a duplicate APPROVED must be refused.

The full state x target matrix against the one transition table, then the same rules
through the persisted service (SQLite and PostgreSQL): an illegal transition changes
neither the run, its transition history nor the audit log.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import func, select

from harness.database.connect import unit_of_work
from harness.database.models import AuditEntry, Run, RunTransition
from harness.errors import IllegalTransition
from harness.runs.service import transition
from harness.runs.state import TERMINAL, TRANSITIONS, RunStatus, check_transition, is_allowed

pytestmark = [pytest.mark.tier0]

S = RunStatus

# The table, spelled out independently of the code: a change to either side must be deliberate.
EXPECTED_EDGES = {
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.CANCELLED),
    (S.RUNNING, S.AWAITING_APPROVAL),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.AWAITING_APPROVAL, S.APPROVED),
    (S.AWAITING_APPROVAL, S.REJECTED),
    (S.AWAITING_APPROVAL, S.EXPIRED),
    (S.AWAITING_APPROVAL, S.CANCELLED),
    (S.APPROVED, S.RUNNING),
    (S.APPROVED, S.FAILED),
    (S.APPROVED, S.CANCELLED),
}

ALL_PAIRS = list(itertools.product(RunStatus, RunStatus))


def test_table_is_exactly_the_documented_one() -> None:
    assert set(TRANSITIONS) == EXPECTED_EDGES


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=str)
def test_every_pair_of_the_matrix(current: RunStatus, target: RunStatus) -> None:
    if (current, target) in EXPECTED_EDGES:
        check_transition(current, target)
        assert is_allowed(current, target)
    else:
        with pytest.raises(IllegalTransition) as info:
            check_transition(current, target)
        assert f"{current} -> {target}" in info.value.message
        assert info.value.details == {"current": str(current), "target": str(target)}


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_states_never_change(terminal: RunStatus) -> None:
    for target in RunStatus:
        assert not is_allowed(terminal, target)
    with pytest.raises(IllegalTransition, match="terminal"):
        check_transition(terminal, S.RUNNING)


def test_failed_to_running_and_duplicate_approved_are_refused() -> None:
    with pytest.raises(IllegalTransition, match="FAILED is terminal"):
        check_transition(S.FAILED, S.RUNNING)
    with pytest.raises(IllegalTransition, match="already APPROVED"):
        check_transition(S.APPROVED, S.APPROVED)


def _counts(session: Any, run_id: str) -> tuple[str, int, int]:
    run = session.get_one(Run, run_id)
    transitions = session.execute(
        select(func.count()).select_from(RunTransition).where(RunTransition.run_id == run_id)
    ).scalar_one()
    audit = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    return run.status, transitions, audit


@pytest.mark.tier1
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
