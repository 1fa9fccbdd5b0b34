"""The test plan's exit criteria, evaluated from the release run's reports; a table and a verdict.

Criteria (TEST_PLAN.md "Exit Criteria"):
1. no failing test in the security regression set;
2. 0 failing tests in tier 1 (and tier 0);
3. flake rate under the budget (docs/release-policy.md) over the flake history;
4. stress tests meet their SLOs (every tier-2 test under tests/harness_stress passed);
5. every high-risk component has a destructive-path test that exists and passed.
A criterion without evidence (a report that was never written) is unmet, never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gates import flake
from gates.refs import ROOT, ref_problem

COMPONENTS = ROOT / "docs" / "high-risk-components.yaml"
BAD = ("failed", "error")


@dataclass(frozen=True)
class Component:
    name: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Criterion:
    name: str
    met: bool
    evidence: str


def load_components(path: Path = COMPONENTS) -> list[Component]:
    """The high-risk component -> destructive-path test mapping."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Component(c["component"], tuple(c.get("tests") or ())) for c in data["components"]]


def component_problems(components: list[Component], *, root: Path = ROOT) -> list[str]:
    """Components without a test, and listed tests that do not exist."""
    found = [f"{c.name}: no destructive-path test listed" for c in components if not c.tests]
    for c in components:
        found += [f"{c.name}: {p}" for ref in c.tests if (p := ref_problem(ref, root=root))]
    return found


def _matches(nodeid: str, ref: str) -> bool:
    return nodeid == ref or nodeid.startswith(ref + "::") or nodeid.startswith(ref + "[")


def evaluate(
    tests: dict[str, dict[str, Any]],
    *,
    components: list[Component],
    flake_rate: float | None,
    flake_budget: float,
    flake_runs: int = flake.MIN_RUNS,
    root: Path = ROOT,
) -> list[Criterion]:
    """Each exit criterion with whether it is met and the evidence, from merged per-test outcomes."""

    def failing(pred: Any) -> list[str]:
        return sorted(n for n, t in tests.items() if pred(n, t) and t["outcome"] in BAD)

    def count(pred: Any) -> int:
        return sum(1 for n, t in tests.items() if pred(n, t))

    out: list[Criterion] = []
    sec = lambda n, t: "security" in t["markers"]  # noqa: E731
    bad = failing(sec)
    out.append(_crit("no failing security-set test", count(sec), bad, "security tests ran"))
    pr = lambda n, t: bool({"tier0", "tier1"} & set(t["markers"]))  # noqa: E731
    bad = failing(pr)
    out.append(_crit("0 failing tier 0/1 tests", count(pr), bad, "tier 0/1 tests ran"))
    if flake_rate is None:
        out.append(Criterion("flake rate under budget", False, "no flake history: run make flake-check"))
    elif flake_runs < flake.MIN_RUNS:
        out.append(
            Criterion(
                "flake rate under budget",
                False,
                f"only {flake_runs} PR-gate run(s) in the window; "
                f"need {flake.MIN_RUNS} (make flake-check N=10)",
            )
        )
    else:
        out.append(
            Criterion(
                "flake rate under budget",
                flake_rate <= flake_budget,
                f"{flake_rate:.2%} (budget {flake_budget:.0%})",
            )
        )
    stress = lambda n, t: n.startswith("tests/harness_stress/") and "tier2" in t["markers"]  # noqa: E731
    bad = failing(stress)
    out.append(_crit("stress SLOs met", count(stress), bad, "stress tests passed"))
    missing: list[str] = component_problems(components, root=root)
    for c in components:
        ran = [n for n in tests if any(_matches(n, ref) for ref in c.tests)]
        if not ran:
            missing.append(f"{c.name}: none of its tests ran")
        elif any(tests[n]["outcome"] in BAD for n in ran):
            missing.append(f"{c.name}: a destructive-path test failed")
    out.append(
        Criterion(
            "destructive-path test per high-risk component",
            not missing,
            "; ".join(missing[:3]) if missing else f"{len(components)} components covered",
        )
    )
    return out


def _crit(name: str, ran: int, bad: list[str], ok_text: str) -> Criterion:
    if ran == 0:
        return Criterion(name, False, "no such test ran: no evidence")
    if bad:
        return Criterion(name, False, f"{len(bad)} failing, first: {bad[0]}")
    return Criterion(name, True, f"{ran} {ok_text}")


def table(criteria: list[Criterion]) -> str:
    """The exit-criteria table printed at the end of ``make release``."""
    width = max(len(c.name) for c in criteria)
    lines = [f"{'exit criterion':<{width}}  met   evidence", "-" * (width + 60)]
    lines += [f"{c.name:<{width}}  {'yes' if c.met else 'NO ':<4}  {c.evidence}" for c in criteria]
    return "\n".join(lines)


def merge_reports(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Per-test outcomes of several report files (later files win for the same test)."""
    from gates.report_plugin import load

    merged: dict[str, dict[str, Any]] = {}
    for path in paths:
        if path.is_file():
            merged.update(load(path)["tests"])
    return merged


def flake_rate_from_history(path: Path) -> tuple[float | None, int]:
    """The overall flake rate of the history file (None when there is none) and its run count."""
    if not path.is_file():
        return None, 0
    analysis = flake.analyse(flake.load_history(path))
    return analysis.overall_rate, analysis.runs
