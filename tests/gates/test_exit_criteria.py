"""The release exit criteria: each one unmet on the evidence that should make it unmet."""

from __future__ import annotations

from typing import Any

import pytest

from gates.exit_criteria import Component, evaluate, table

pytestmark = [pytest.mark.tier0]

COMPONENTS = [Component("audit", ("tests/harness_integration/test_audit_log_tamper_evidence.py",))]
AUDIT = "tests/harness_integration/test_audit_log_tamper_evidence.py::test_modified_historical_audit_entry"
STRESS = "tests/harness_stress/test_high_concurrency_run_submission_race_conditions.py::test_burst[sqlite]"


def _tests(**over: str) -> dict[str, dict[str, Any]]:
    tests = {
        AUDIT: {"outcome": "passed", "markers": ["security", "tier1"]},
        "tests/u.py::test_unit": {"outcome": "passed", "markers": ["tier0"]},
        STRESS: {"outcome": "passed", "markers": ["tier2"]},
    }
    for name, outcome in over.items():
        tests[{"audit": AUDIT, "unit": "tests/u.py::test_unit", "stress": STRESS}[name]]["outcome"] = outcome
    return tests


def _met(tests: dict[str, dict[str, Any]], flake_rate: float | None = 0.0) -> dict[str, bool]:
    criteria = evaluate(tests, components=COMPONENTS, flake_rate=flake_rate, flake_budget=0.01)
    return {c.name: c.met for c in criteria}


def test_all_met_on_clean_evidence() -> None:
    criteria = evaluate(_tests(), components=COMPONENTS, flake_rate=0.0, flake_budget=0.01)
    assert all(c.met for c in criteria) and len(criteria) == 5
    assert "no failing security-set test" in table(criteria)


def test_each_kind_of_bad_evidence_unmeets_its_criterion() -> None:
    assert _met(_tests(audit="failed")) == {
        "no failing security-set test": False,
        "0 failing tier 0/1 tests": False,
        "flake rate under budget": True,
        "stress SLOs met": True,
        "destructive-path test per high-risk component": False,
    }
    assert not _met(_tests(unit="error"))["0 failing tier 0/1 tests"]
    assert not _met(_tests(stress="failed"))["stress SLOs met"]
    assert not _met(_tests(), flake_rate=0.02)["flake rate under budget"]
    assert not _met(_tests(), flake_rate=None)["flake rate under budget"]
    few = evaluate(_tests(), components=COMPONENTS, flake_rate=0.0, flake_budget=0.01, flake_runs=2)
    assert [c.evidence for c in few if c.name == "flake rate under budget"] == [
        "only 2 PR-gate run(s) in the window; need 10 (make flake-check N=10)"
    ]


def test_missing_evidence_is_unmet_never_assumed() -> None:
    met = _met({})
    assert met["no failing security-set test"] is False
    assert met["stress SLOs met"] is False
    assert met["destructive-path test per high-risk component"] is False
