"""The flake budget: rates from the history, broken tests, the quarantine and its expiry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gates import flake

pytestmark = [pytest.mark.tier0]

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _run(days_ago: float, **outcomes: str) -> dict[str, object]:
    return {"started": (NOW - timedelta(days=days_ago)).isoformat(), "tests": outcomes}


def _history(n_tests: int, flaky: dict[str, list[str]]) -> list[dict[str, object]]:
    runs = []
    for i in range(max(len(v) for v in flaky.values())):
        outcomes = {f"t{k}": "passed" for k in range(n_tests)}
        outcomes.update({name: seq[i] for name, seq in flaky.items()})
        runs.append(_run(0.1 * i, **outcomes))
    return runs


def test_one_flaky_test_in_a_hundred_is_at_the_budget_and_two_are_over() -> None:
    at = flake.analyse(_history(99, {"f1": ["passed", "failed"]}), now=NOW)
    assert at.tests == 100 and list(at.flaky) == ["f1"] and at.flaky["f1"] == 0.5
    assert at.overall_rate == pytest.approx(0.01) and at.gate_failures() == []
    over = flake.analyse(_history(98, {"f1": ["passed", "failed"], "f2": ["error", "passed"]}), now=NOW)
    assert over.overall_rate == pytest.approx(0.02)
    assert over.gate_failures() == ["flake rate 2.00% over budget 1%"]


def test_a_test_failing_every_run_is_broken_not_flaky_and_fails_the_gate() -> None:
    result = flake.analyse(_history(10, {"b": ["failed", "failed"]}), now=NOW)
    assert result.flaky == {} and result.broken == ["b"]
    assert result.gate_failures() == ["broken (failed every run): b"]


def test_skips_do_not_count_and_old_runs_fall_out_of_the_window() -> None:
    runs = [_run(8, a="failed"), _run(1, a="passed"), _run(0.5, a="skipped")]
    result = flake.analyse(runs, now=NOW)
    assert result.runs == 2 and result.tests == 1 and result.flaky == {}


def _quarantine(tmp_path: Path, expires: str) -> tuple[list[flake.QuarantineEntry], list[str]]:
    path = tmp_path / "q.yaml"
    path.write_text(
        f"quarantine:\n  - test: tests/x.py\n    owner: release\n    reason: readiness wait\n"
        f"    expires: {expires}\n  - test: tests/y.py\n    owner: someone\n"
    )
    return flake.load_quarantine(path)


def test_quarantined_tests_run_and_report_but_do_not_gate(tmp_path: Path) -> None:
    runs = _history(5, {"tests/x.py::test_a[1]": ["passed", "failed"], "tests/x.py::test_b": ["failed"] * 2})
    result = flake.analyse(runs, quarantine=_quarantine(tmp_path, "2026-12-31"), now=NOW)
    assert result.flaky == {} and result.broken == []
    assert result.quarantined == {
        "tests/x.py::test_a[1]": "1/2 failed (owner release)",
        "tests/x.py::test_b": "2/2 failed (owner release)",
    }
    # The malformed second entry is itself a gate failure.
    assert result.gate_failures() == ["quarantine entry 1: missing reason, expires"]
    assert "quarantined   tests/x.py::test_b: 2/2 failed" in flake.summary(result)


def test_an_expired_quarantine_entry_fails_the_gate(tmp_path: Path) -> None:
    result = flake.analyse(
        _history(5, {"t0": ["passed"]}), quarantine=_quarantine(tmp_path, "2026-11-28"), now=NOW
    )
    assert [e.expires for e in result.expired] == [date(2026, 11, 28)]
    assert any("expired 2026-11-28: tests/x.py (owner release)" in w for w in result.gate_failures())


def test_history_round_trips_and_an_empty_history_fails(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    assert flake.analyse(flake.load_history(path), now=NOW).gate_failures() == [
        "no runs in the history window: nothing to judge"
    ]
    report = {
        "seed": 7,
        "exitstatus": 1,
        "tests": {"t::a": {"outcome": "failed"}, "t::b": {"outcome": "passed"}},
    }
    flake.append_run(report, started=NOW, path=path)
    flake.append_run({**report, "tests": {"t::a": {"outcome": "passed"}}}, started=NOW, path=path)
    runs = flake.load_history(path)
    assert [r["seed"] for r in runs] == [7, 7]
    assert flake.analyse(runs, now=NOW).flaky == {"t::a": 0.5}


def test_the_repository_quarantine_file_is_valid_and_unexpired() -> None:
    entries, problems = flake.load_quarantine()
    assert problems == []
    assert all(e.expires >= datetime.now(UTC).date() for e in entries)
