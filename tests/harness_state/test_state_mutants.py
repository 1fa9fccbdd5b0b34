"""Mutation-testing kills for the state machine: the refusal names exactly the allowed targets."""

from __future__ import annotations

import pytest

from harness.errors import IllegalTransition
from harness.runs.state import RunStatus, check_transition

pytestmark = [pytest.mark.tier0]

S = RunStatus


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (S.PENDING, S.APPROVED, "CANCELLED, FAILED, RUNNING"),
        (S.RUNNING, S.APPROVED, "AWAITING_APPROVAL, CANCELLED, FAILED, SUCCEEDED"),
        (S.AWAITING_APPROVAL, S.RUNNING, "APPROVED, CANCELLED, EXPIRED, REJECTED"),
        (S.APPROVED, S.SUCCEEDED, "CANCELLED, FAILED, RUNNING"),
    ],
)
def test_refusal_lists_exactly_the_targets_the_table_allows(
    current: RunStatus, target: RunStatus, allowed: str
) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, target)
    assert str(info.value).splitlines()[0] == (
        f"illegal transition {current} -> {target}: from {current} the run may only go to {allowed}"
    )


@pytest.mark.parametrize("terminal", [S.SUCCEEDED, S.FAILED, S.REJECTED, S.EXPIRED, S.CANCELLED])
def test_each_terminal_state_is_refused_as_terminal(terminal: RunStatus) -> None:
    # Spelled out here, not read from TERMINAL: a shrunken table must fail this test.
    with pytest.raises(IllegalTransition, match=f"{terminal} is terminal and never changes"):
        check_transition(terminal, S.CANCELLED)
