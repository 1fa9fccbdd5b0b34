"""Run gate steps as subprocesses, log each to .gates/logs, and print a one-screen summary."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gates.refs import ROOT

LOGS = ROOT / ".gates" / "logs"
PY = sys.executable


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]
    report: Path | None = None  # per-test JSON written by gates.report_plugin
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StepResult:
    step: Step
    returncode: int
    seconds: float
    log: Path


def pytest_step(name: str, *args: str, report_dir: Path) -> Step:
    """A pytest run of the repository with per-test outcomes written beside the logs."""
    report = report_dir / f"{name}.json"
    argv = (PY, "-m", "pytest", "-q", "-p", "gates.report_plugin", f"--gates-report={report}", *args)
    return Step(name, argv, report)


def make_step(name: str, target: str, *, report_dir: Path) -> Step:
    """A Makefile target whose pytest runs also write per-test outcomes (through PYTEST_ADDOPTS)."""
    report = report_dir / f"{name}.json"
    addopts = f"{os.environ.get('PYTEST_ADDOPTS', '')} -p gates.report_plugin --gates-report={report}".strip()
    return Step(name, ("make", "--no-print-directory", target), report, (("PYTEST_ADDOPTS", addopts),))


def run(step: Step) -> StepResult:
    """Run one step, its output to its log file; print one line when it ends."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{step.name}.log"
    if step.report is not None:
        step.report.unlink(missing_ok=True)  # stale evidence must never count
    print(f"-> {step.name}: {' '.join(step.argv[2:] if step.argv[0] == PY else step.argv)}", flush=True)
    start = time.monotonic()
    with log.open("wb") as out:
        env = {**os.environ, **dict(step.env)}
        # argv comes from the fixed gate definitions in this package, never from outside input
        code = subprocess.call(step.argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)  # noqa: S603
    seconds = time.monotonic() - start
    print(
        f"   {'ok' if code == 0 else f'FAILED (exit {code})'} in {seconds:.0f}s, log {log.relative_to(ROOT)}",
        flush=True,
    )
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-12:]
        print("\n".join("   | " + line for line in tail), flush=True)
    return StepResult(step, code, seconds, log)


def summary(title: str, results: list[StepResult]) -> str:
    """The one-screen table: step, verdict, duration, test counts."""
    from gates.report_plugin import load

    lines = [f"== {title} summary", f"{'step':<16} {'result':<8} {'time':>7}  tests"]
    for r in results:
        counts = ""
        if r.step.report is not None and r.step.report.is_file():
            outcomes = [t["outcome"] for t in load(r.step.report)["tests"].values()]
            counts = ", ".join(f"{outcomes.count(o)} {o}" for o in sorted(set(outcomes)))
        verdict = "pass" if r.returncode == 0 else f"FAIL({r.returncode})"
        lines.append(f"{r.step.name:<16} {verdict:<8} {_dur(r.seconds):>7}  {counts}")
    total = sum(r.seconds for r in results)
    failed = [r.step.name for r in results if r.returncode != 0]
    lines.append(f"{'total':<16} {'FAIL' if failed else 'pass':<8} {_dur(total):>7}")
    return "\n".join(lines)


def _dur(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
