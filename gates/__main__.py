"""``python -m gates COMMAND``: the release machinery behind the Makefile targets.

nightly        tier 2 (full e2e, stress/chaos) + mutation; one-screen summary
release        PR gate + tier 2 + tier 3 drills + mutation, then the exit-criteria table
mutation       mutation score per guardrail module (threshold 90%), surviving mutants
flake          run the PR gate N times, keep per-test outcomes, flake rates, quarantine
exit-criteria  the exit-criteria table from existing reports
threat-model   check the threat-model map; --write renders docs/threat-model.md
Exit codes: 0 all met, 1 a gate or criterion failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from gates import exit_criteria, flake, steps, threat_model
from gates.refs import ROOT

REPORTS = ROOT / ".gates" / "reports"
PR_SELECTION = ("-m", "tier0 or tier1 or security")


def _nightly(_: argparse.Namespace) -> int:
    results = [
        steps.run(steps.pytest_step("tier2", "-n", "2", "-m", "tier2", report_dir=REPORTS)),
        steps.run(steps.Step("mutation", (steps.PY, "-m", "gates", "mutation"))),
    ]
    print(steps.summary("nightly", results))
    return 0 if all(r.returncode == 0 for r in results) else 1


def _criteria(paths: list[Path]) -> list[exit_criteria.Criterion]:
    rate, runs = exit_criteria.flake_rate_from_history(flake.HISTORY)
    return exit_criteria.evaluate(
        exit_criteria.merge_reports(paths),
        components=exit_criteria.load_components(),
        flake_rate=rate,
        flake_runs=runs,
        flake_budget=flake.BUDGET,
    )


def _release(_: argparse.Namespace) -> int:
    plan = [
        steps.make_step("pr-gate", "test", report_dir=REPORTS),
        steps.pytest_step("tier2", "-n", "2", "-m", "tier2", report_dir=REPORTS),
        steps.pytest_step("tier3", "-m", "tier3", report_dir=REPORTS),
        steps.Step("mutation", (steps.PY, "-m", "gates", "mutation")),
        steps.Step("threat-model", (steps.PY, "-m", "gates", "threat-model")),
    ]
    results = [steps.run(s) for s in plan]
    print(steps.summary("release", results))
    criteria = _criteria([s.report for s in plan if s.report is not None])
    print(exit_criteria.table(criteria))
    ok = all(r.returncode == 0 for r in results) and all(c.met for c in criteria)
    print("release gate: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def _exit_criteria(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.reports] or sorted(REPORTS.glob("*.json"))
    criteria = _criteria(paths)
    print(exit_criteria.table(criteria))
    return 0 if all(c.met for c in criteria) else 1


def _flake(args: argparse.Namespace) -> int:
    if args.runs < 1:
        print("gates flake: --runs must be at least 1", file=sys.stderr)
        return 2
    history = Path(args.history)
    selection = tuple(args.pytest_args) or (*PR_SELECTION, "-n", "2")
    for i in range(args.runs):
        started = datetime.now(UTC)
        step = steps.pytest_step(f"flake-{i + 1}", *selection, report_dir=REPORTS / "flake")
        steps.run(step)
        if step.report is None or not step.report.is_file():
            print(f"gates flake: run {i + 1} wrote no report (see its log); not counted", file=sys.stderr)
            continue
        from gates.report_plugin import load

        flake.append_run(load(step.report), started=started, path=history)
    analysis = flake.analyse(
        flake.load_history(history), quarantine=flake.load_quarantine(Path(args.quarantine))
    )
    print(flake.summary(analysis))
    return 0 if not analysis.gate_failures() else 1


def _threat_model(args: argparse.Namespace) -> int:
    threats = threat_model.load()
    problems = threat_model.problems(threats)
    for p in problems:
        print(f"threat model: {p}", file=sys.stderr)
    target = ROOT / "docs" / "threat-model.md"
    if args.write:
        target.write_text(threat_model.render(threats), encoding="utf-8")
    elif target.read_text(encoding="utf-8") != threat_model.render(threats):
        print(
            "threat model: docs/threat-model.md is stale; run python -m gates threat-model --write",
            file=sys.stderr,
        )
        return 1
    print(
        f"threat model: {len(threats)} threats, {sum(len(t.tests) for t in threats)} tests, "
        f"{sum(len(t.goldens) for t in threats)} goldens, {len(problems)} problem(s)"
    )
    return 1 if problems else 0


def _mutation(args: argparse.Namespace) -> int:
    from gates import mutation

    return mutation.main(modules=args.modules, threshold=args.threshold)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gates", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("nightly").set_defaults(fn=_nightly)
    sub.add_parser("release").set_defaults(fn=_release)
    p = sub.add_parser("exit-criteria")
    p.add_argument("reports", nargs="*", help="report JSON files (default: .gates/reports/*.json)")
    p.set_defaults(fn=_exit_criteria)
    p = sub.add_parser("flake")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--history", default=str(flake.HISTORY))
    p.add_argument("--quarantine", default=str(flake.QUARANTINE))
    p.add_argument("pytest_args", nargs="*", help="pytest selection (default: the PR gate, -n 2)")
    p.set_defaults(fn=_flake)
    p = sub.add_parser("threat-model")
    p.add_argument("--write", action="store_true")
    p.set_defaults(fn=_threat_model)
    p = sub.add_parser("mutation")
    p.add_argument("modules", nargs="*", help="module keys (default: all)")
    p.add_argument("--threshold", type=float, default=0.90)
    p.set_defaults(fn=_mutation)
    args = parser.parse_args(argv)
    code: int = args.fn(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
