"""Golden coverage: which lines and branches of ``harness/`` the goldens alone exercise.

The replay runs in a child process under coverage.py (branch mode, ``source=harness``), so module
import lines count exactly as they would in a fresh ``check``. The result is read back from
coverage's JSON report: per module, the statements and branches no golden reaches. ``--diff REF``
intersects that with the lines changed since the merge base of REF: a changed guardrail line no
golden covers is a gap a PR must close with a scenario.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replay.errors import ReplayError

# The guardrails whose every branch a golden should pin (policy, redaction, injection guard,
# routing, sandbox, state machine, approval gate, audit).
GUARDRAIL_MODULES: tuple[str, ...] = (
    "harness/policy/engine.py",
    "harness/redaction.py",
    "harness/orchestrator/guard.py",
    "harness/orchestrator/_guard_rules.py",
    "harness/orchestrator/_guard_text.py",
    "harness/orchestrator/routing.py",
    "harness/tools/sandbox.py",
    "harness/runs/state.py",
    "harness/orchestrator/loop.py",
    "harness/runs/service.py",
    "harness/audit.py",
)

_CHILD = """
import sys, coverage
cov = coverage.Coverage(data_file=sys.argv[1], branch=True, source=["harness"])
cov.start()
from harness.observability import configure_logging
configure_logging(stream=sys.stderr, level="ERROR")
from pathlib import Path
from replay.gate import check
from replay.store import GoldenStore
store = GoldenStore(Path(sys.argv[2]))
bad = []
for name in sys.argv[3:] or store.scenario_names():
    cov.switch_context(name)  # per-scenario contexts: which golden covers which line
    outcome = check(store, [name], ci=True)
    bad += [r.name for r in outcome.results if r.status.failed]
cov.stop()
cov.save()
print("\\n".join("FAILED " + name for name in bad))
sys.exit(1 if bad else 0)
"""


@dataclass(frozen=True)
class ModuleCoverage:
    """Coverage of one ``harness/`` module by the goldens."""

    path: str
    statements: int
    covered_statements: int
    branches: int
    covered_branches: int
    missing_lines: tuple[int, ...]
    missing_branches: tuple[tuple[int, int], ...]
    executable: frozenset[int] = field(default=frozenset(), repr=False)
    # line -> the scenarios that executed it (coverage.py dynamic contexts)
    scenarios_by_line: dict[int, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def branch_percent(self) -> float:
        return 100.0 * self.covered_branches / self.branches if self.branches else 100.0

    @property
    def percent(self) -> float:
        """coverage.py's combined figure: (statements + branches) covered over their total."""
        total = self.statements + self.branches
        return 100.0 * (self.covered_statements + self.covered_branches) / total if total else 100.0

    @property
    def guardrail(self) -> bool:
        return self.path in GUARDRAIL_MODULES

    def uncovered(self) -> set[int]:
        """Lines with a missing statement or a branch never taken."""
        return set(self.missing_lines) | {src for src, _ in self.missing_branches}


@dataclass(frozen=True)
class CoverageReport:
    modules: tuple[ModuleCoverage, ...]
    failed_scenarios: tuple[str, ...] = ()

    def totals(self, *, guardrail_only: bool) -> tuple[float, float]:
        """(branch %, combined %) over all modules, or over the guardrail modules only."""
        chosen = [m for m in self.modules if m.guardrail or not guardrail_only]
        branches = sum(m.branches for m in chosen)
        covered = sum(m.covered_branches for m in chosen)
        statements = sum(m.statements for m in chosen)
        covered_statements = sum(m.covered_statements for m in chosen)
        branch = 100.0 * covered / branches if branches else 100.0
        total = branches + statements
        combined = 100.0 * (covered + covered_statements) / total if total else 100.0
        return branch, combined

    def module(self, path: str) -> ModuleCoverage | None:
        return next((m for m in self.modules if m.path == path), None)


def run_coverage(
    root: Path, names: Sequence[str] = (), *, html: Path | None = None, data_file: Path | None = None
) -> CoverageReport:
    """Replay ``names`` (default: all) under branch coverage in a child process; read the result."""
    import coverage

    with tempfile.TemporaryDirectory(prefix="golden-coverage-") as tmp:
        data = data_file or Path(tmp) / ".coverage"
        env = {**os.environ, "CI": "true"}
        proc = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
            [sys.executable, "-c", _CHILD, str(data), str(root.resolve()), *names],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode not in (0, 1) or not data.exists():
            raise ReplayError(
                f"coverage run of the goldens failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['no output']}"
            )
        failed = tuple(line[7:] for line in proc.stdout.splitlines() if line.startswith("FAILED "))
        cov = coverage.Coverage(data_file=str(data), branch=True, source=["harness"])
        cov.load()
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out), show_contexts=True)
        if html is not None:
            cov.html_report(directory=str(html), title="harness/ lines and branches exercised by goldens")
        raw = json.loads(out.read_text(encoding="utf-8"))
    return CoverageReport(_modules(raw, root), failed_scenarios=failed)


def _modules(raw: dict[str, Any], root: Path) -> tuple[ModuleCoverage, ...]:
    result = []
    base = root.resolve()
    for filename, info in raw["files"].items():
        path = Path(filename)
        rel = (path.resolve().relative_to(base) if path.is_absolute() else path).as_posix()
        s = info["summary"]
        result.append(
            ModuleCoverage(
                path=rel,
                statements=s["num_statements"],
                covered_statements=s["covered_lines"],
                branches=s.get("num_branches", 0),
                covered_branches=s.get("covered_branches", 0),
                missing_lines=tuple(info["missing_lines"]),
                missing_branches=tuple((a, b) for a, b in info.get("missing_branches", [])),
                executable=frozenset(info["executed_lines"]) | frozenset(info["missing_lines"]),
                scenarios_by_line={
                    int(line): tuple(sorted(c for c in ctxs if c))
                    for line, ctxs in info.get("contexts", {}).items()
                },
            )
        )
    return tuple(sorted(result, key=lambda m: m.path))


def render_table(report: CoverageReport, *, guardrail_only: bool = False) -> str:
    """Per module: branch %, combined %, and the uncovered lines (compressed to ranges)."""
    lines = [f"{'module':44} {'branch':>8} {'total':>7}  uncovered lines"]
    for m in report.modules:
        if guardrail_only and not m.guardrail:
            continue
        mark = "*" if m.guardrail else " "
        lines.append(
            f"{mark}{m.path:43} {m.branch_percent:7.1f}% {m.percent:6.1f}%  {_ranges(sorted(m.uncovered()))}"
        )
    branch, combined = report.totals(guardrail_only=True)
    all_branch, all_combined = report.totals(guardrail_only=False)
    lines.append(
        f"guardrail modules (*): {branch:.1f}% branch coverage by goldens ({combined:.1f}% combined)"
    )
    lines.append(
        f"all of harness/: {all_branch:.1f}% branch coverage by goldens ({all_combined:.1f}% combined)"
    )
    if report.failed_scenarios:
        lines.append(f"note: scenarios that did not replay green: {', '.join(report.failed_scenarios)}")
    return "\n".join(lines)


def _ranges(numbers: Sequence[int]) -> str:
    parts: list[str] = []
    for n in numbers:
        if parts and "-" not in parts[-1] and int(parts[-1]) == n - 1:
            parts[-1] = f"{parts[-1]}-{n}"
        elif parts and "-" in parts[-1] and int(parts[-1].split("-")[1]) == n - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{n}"
        else:
            parts.append(str(n))
    return ", ".join(parts)


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def changed_lines(root: Path, ref: str) -> dict[str, set[int]]:
    """Lines of ``harness/`` added or changed since the merge base of ``ref`` and HEAD (worktree incl.)."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)  # noqa: S603, S607 - git from PATH, as a developer runs it

    base = git("merge-base", ref, "HEAD")
    if base.returncode != 0:
        raise ReplayError(f"no merge base between {ref!r} and HEAD: {base.stderr.strip() or 'unknown ref'}")
    diff = git("diff", "-U0", "--no-color", base.stdout.strip(), "--", "harness")
    if diff.returncode != 0:
        raise ReplayError(f"git diff against {ref!r} failed: {diff.stderr.strip()}")
    changed: dict[str, set[int]] = {}
    current: str | None = None
    for line in diff.stdout.splitlines():
        if line.startswith("+++ "):
            target = line[4:]
            current = target[2:] if target.startswith("b/") else None
        elif current and (m := _HUNK.match(line)):
            start, count = int(m.group(1)), int(m.group(2) or "1")
            changed.setdefault(current, set()).update(range(start, start + count))
    return changed


@dataclass(frozen=True)
class DiffGap:
    path: str
    lines: tuple[int, ...]
    guardrail: bool


def diff_gaps(report: CoverageReport, changed: dict[str, set[int]]) -> tuple[DiffGap, ...]:
    """Changed executable lines of ``harness/`` that no golden exercises (fully or in a branch)."""
    gaps = []
    for path, lines in sorted(changed.items()):
        if not path.endswith(".py"):
            continue
        m = report.module(path)
        if m is None:  # a new module no golden imports: every executable line is a gap
            gaps.append(DiffGap(path, tuple(sorted(lines)), path in GUARDRAIL_MODULES))
            continue
        missing = sorted((lines & m.executable) & m.uncovered())
        if missing:
            gaps.append(DiffGap(path, tuple(missing), m.guardrail))
    return tuple(gaps)
