"""Test plan: transition FAILED -> RUNNING or a duplicate APPROVED must be refused.

The full state x target matrix against the one transition table, then the same rules
through the persisted service (SQLite and PostgreSQL, tier 1, in
test_run_state_machine_persisted_transitions.py).
"""

from __future__ import annotations

import itertools

import pytest

from harness.errors import IllegalTransition
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
