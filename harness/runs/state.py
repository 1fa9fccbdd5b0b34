"""The run state machine: one explicit transition table, nothing else decides.

    PENDING ──start──▶ RUNNING ──needs approval──▶ AWAITING_APPROVAL
       │                 │  ▲                            │
       │                 │  └────────── resume ── APPROVED ◀─ approve
       │                 ├──▶ SUCCEEDED                 ├─ reject ─▶ REJECTED
       │                 └──▶ FAILED                    └─ expire ─▶ EXPIRED
       └──────────── cancel (from any non-terminal) ──▶ CANCELLED

Terminal states (SUCCEEDED, FAILED, REJECTED, EXPIRED, CANCELLED) never change again.
"""

from __future__ import annotations

from enum import StrEnum

from harness.errors import IllegalTransition


class RunStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


S = RunStatus

TRANSITIONS: frozenset[tuple[RunStatus, RunStatus]] = frozenset(
    {
        (S.PENDING, S.RUNNING),
        (S.PENDING, S.FAILED),  # e.g. dead-lettered before it ever started
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
)

TERMINAL: frozenset[RunStatus] = frozenset({S.SUCCEEDED, S.FAILED, S.REJECTED, S.EXPIRED, S.CANCELLED})


def is_allowed(current: RunStatus, target: RunStatus) -> bool:
    """True when the table has the edge ``current -> target``."""
    return (current, target) in TRANSITIONS


def check_transition(current: RunStatus, target: RunStatus) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> target`` is in the table."""
    if is_allowed(current, target):
        return
    if current in TERMINAL:
        why = f"{current} is terminal and never changes"
    elif current == target:
        why = f"the run is already {current}"
    else:
        allowed = sorted(t for (f, t) in TRANSITIONS if f == current)
        why = f"from {current} the run may only go to {', '.join(allowed)}"
    raise IllegalTransition(
        f"illegal transition {current} -> {target}: {why}",
        current=str(current),
        target=str(target),
    )
