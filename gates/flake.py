"""Flake budget: per-test outcomes of repeated PR-gate runs, flake rates, and the quarantine.

A test is *flaky* when, within the history window, it both passed and failed. The overall
flake rate is flaky tests / tests observed, quarantined tests left out; it gates at the budget
in docs/release-policy.md (1%). A test that failed in every run is *broken*, not flaky, and
fails the gate too. Quarantined tests (tests/quarantine.yaml: test, owner, reason, expires)
still run and are reported but do not gate; an expired entry fails the gate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from gates.refs import ROOT

HISTORY = ROOT / ".gates" / "flake-history.json"
QUARANTINE = ROOT / "tests" / "quarantine.yaml"
BUDGET = 0.01
MIN_RUNS = 10  # the release exit criterion judges the rate over at least this many PR-gate runs
WINDOW_DAYS = 7
BAD = ("failed", "error")


@dataclass(frozen=True)
class QuarantineEntry:
    test: str
    owner: str
    reason: str
    expires: date

    def covers(self, nodeid: str) -> bool:
        return nodeid == self.test or nodeid.startswith((self.test + "::", self.test + "["))


@dataclass
class Analysis:
    runs: int
    tests: int
    flaky: dict[str, float] = field(default_factory=dict)  # nodeid -> failure share
    broken: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)  # nodeid -> outcome summary
    expired: list[QuarantineEntry] = field(default_factory=list)
    quarantine_problems: list[str] = field(default_factory=list)

    @property
    def overall_rate(self) -> float:
        return len(self.flaky) / self.tests if self.tests else 0.0

    def gate_failures(self, budget: float = BUDGET) -> list[str]:
        """Why the gate fails; empty when it passes."""
        why = (
            [f"flake rate {self.overall_rate:.2%} over budget {budget:.0%}"]
            if self.overall_rate > budget
            else []
        )
        why += [f"broken (failed every run): {t}" for t in self.broken]
        why += [f"quarantine entry expired {e.expires}: {e.test} (owner {e.owner})" for e in self.expired]
        why += self.quarantine_problems
        if self.runs == 0:
            why.append("no runs in the history window: nothing to judge")
        return why


def load_quarantine(path: Path = QUARANTINE) -> tuple[list[QuarantineEntry], list[str]]:
    """The quarantine entries and what is malformed about the file (each a gate failure)."""
    if not path.is_file():
        return [], []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries, problems = [], []
    for i, raw in enumerate(data.get("quarantine") or []):
        missing = [k for k in ("test", "owner", "reason", "expires") if not raw.get(k)]
        if missing:
            problems.append(f"quarantine entry {i}: missing {', '.join(missing)}")
            continue
        expires = raw["expires"]
        if not isinstance(expires, date):
            try:
                expires = date.fromisoformat(str(expires))
            except ValueError:
                problems.append(f"quarantine entry {i}: expires {expires!r} is not YYYY-MM-DD")
                continue
        entries.append(QuarantineEntry(str(raw["test"]), str(raw["owner"]), str(raw["reason"]), expires))
    return entries, problems


def load_history(path: Path = HISTORY) -> list[dict[str, Any]]:
    """The recorded runs (oldest first)."""
    if not path.is_file():
        return []
    runs: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["runs"]
    return runs


def append_run(report: dict[str, Any], *, started: datetime, path: Path = HISTORY) -> None:
    """Add one run's per-test outcomes to the history file."""
    runs = load_history(path)
    runs.append(
        {
            "started": started.isoformat(),
            "seed": report.get("seed"),
            "exitstatus": report.get("exitstatus"),
            "tests": {n: t["outcome"] for n, t in sorted(report["tests"].items())},
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "runs": runs}, indent=1) + "\n", encoding="utf-8")


def analyse(
    runs: list[dict[str, Any]],
    *,
    quarantine: tuple[list[QuarantineEntry], list[str]] = ([], []),
    now: datetime | None = None,
    window_days: int = WINDOW_DAYS,
) -> Analysis:
    """Flaky, broken and quarantined tests over the runs of the last ``window_days``."""
    now = now or datetime.now(UTC)
    entries, problems = quarantine
    recent = [r for r in runs if datetime.fromisoformat(r["started"]) >= now - timedelta(days=window_days)]
    seen: dict[str, list[str]] = {}
    for run in recent:
        for nodeid, outcome in run["tests"].items():
            if outcome in ("passed", *BAD):
                seen.setdefault(nodeid, []).append(outcome)
    result = Analysis(runs=len(recent), tests=0, quarantine_problems=list(problems))
    result.expired = [e for e in entries if e.expires < now.date()]
    for nodeid, outcomes in sorted(seen.items()):
        fails = sum(o in BAD for o in outcomes)
        entry = next((e for e in entries if e.covers(nodeid)), None)
        if entry is not None:
            result.quarantined[nodeid] = f"{fails}/{len(outcomes)} failed (owner {entry.owner})"
            continue
        result.tests += 1
        if fails == len(outcomes):
            result.broken.append(nodeid)
        elif fails:
            result.flaky[nodeid] = fails / len(outcomes)
    return result


def summary(analysis: Analysis, *, budget: float = BUDGET, shown: int = 15) -> str:
    """One screen: runs, overall rate, the flakiest tests, quarantine, verdict."""
    lines = [
        f"flake check: {analysis.runs} run(s) in the last {WINDOW_DAYS} days, "
        f"{analysis.tests} gating test(s)",
        f"overall flake rate: {analysis.overall_rate:.2%} (budget {budget:.0%}), "
        f"{len(analysis.flaky)} flaky, {len(analysis.broken)} broken, "
        f"{len(analysis.quarantined)} quarantined",
    ]
    for nodeid, rate in sorted(analysis.flaky.items(), key=lambda kv: -kv[1])[:shown]:
        lines.append(f"  flaky {rate:6.1%}  {nodeid}")
    lines += [f"  broken        {n}" for n in analysis.broken[:shown]]
    lines += [f"  quarantined   {n}: {s}" for n, s in sorted(analysis.quarantined.items())[:shown]]
    failures = analysis.gate_failures(budget)
    lines.append("flake gate: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures[:5])))
    return "\n".join(lines)
