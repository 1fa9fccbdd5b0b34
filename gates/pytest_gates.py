"""The suite's session gates as pytest hooks; tests/conftest.py re-exports them.

* the session refuses to start with a real-looking provider key in its environment;
* the run fails when any collected test has zero or several tier markers;
* freezegun leaves pytest's own timer alone, so ``--durations`` and timeouts see real time.
"""

from __future__ import annotations

import os

import pytest

from gates import envguard, tiers

# Modules whose time functions must stay real while a test freezes the clock.
NOT_FROZEN = ("_pytest.timing", "_pytest.runner", "_pytest.terminal", "pytest_timeout", "xdist")


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a real-looking provider key; keep freezegun's hands off pytest's timer."""
    found = envguard.real_looking_keys(os.environ)
    if found:
        raise pytest.UsageError(envguard.refusal(found))
    import freezegun

    freezegun.configure(extend_ignore_list=list(NOT_FROZEN))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fail the run when any collected test has zero or several tier markers."""
    problems = tiers.tier_problems(items)
    if problems:
        raise pytest.UsageError(tiers.refusal(problems))
