"""Golden coverage and mutation, the pure parts: diff gaps, mutation operators, code patching."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from replay.golden_coverage import CoverageReport, ModuleCoverage, changed_lines, diff_gaps
from replay.mutate import _live_function, enumerate_mutants, mutated_source

pytestmark = [pytest.mark.tier0]

ROOT = Path(__file__).resolve().parents[2]


def _module(
    path: str, *, executed: set[int], missing: set[int], partial: frozenset[int] = frozenset()
) -> ModuleCoverage:
    return ModuleCoverage(
        path=path,
        statements=len(executed | missing),
        covered_statements=len(executed),
        branches=2 * len(partial),
        covered_branches=len(partial),
        missing_lines=tuple(sorted(missing)),
        missing_branches=tuple((line, -1) for line in sorted(partial)),
        executable=frozenset(executed | missing),
    )


def test_a_changed_uncovered_guardrail_line_is_a_guardrail_gap() -> None:
    report = CoverageReport(
        (
            _module("harness/policy/engine.py", executed={10, 11, 12}, missing={13}, partial={11}),
            _module("harness/settings.py", executed={1}, missing={2}),
        )
    )
    gaps = diff_gaps(
        report,
        {
            "harness/policy/engine.py": {10, 11, 13, 40},  # 40: not executable (a comment, say)
            "harness/settings.py": {2},
            "harness/prompts/system.v1.j2": {1},
        },
    )
    assert [(g.path, g.lines, g.guardrail) for g in gaps] == [
        ("harness/policy/engine.py", (11, 13), True),  # 11: a branch never taken; 10 fully covered
        ("harness/settings.py", (2,), False),
    ]


def test_fully_covered_changes_leave_no_gap() -> None:
    report = CoverageReport((_module("harness/redaction.py", executed={5, 6}, missing=set()),))
    assert diff_gaps(report, {"harness/redaction.py": {5, 6}}) == ()


def test_changed_lines_reads_the_hunks_since_the_merge_base(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.invalid")
    git("config", "user.name", "t")
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "m.py").write_text("a = 1\nb = 2\nc = 3\n")
    git("add", ".")
    git("commit", "-qm", "base")
    (tmp_path / "harness" / "m.py").write_text("a = 1\nb = 20\nc = 3\nd = 4\n")
    assert changed_lines(tmp_path, "main") == {"harness/m.py": {2, 4}}


def test_each_operator_changes_what_the_code_does() -> None:
    source = (
        "def f(a, b):\n"
        "    if a == b and not a:\n"
        "        g(a, b)\n"
        "    return a < 3\n"
    )
    from replay import mutate

    tree = __import__("ast").parse(source)
    descriptions = [desc for _n, _q, desc, _h in mutate._sites(tree)]
    assert descriptions == [
        "if a == b and (not a) -> if False",
        "And -> Or",
        "Eq -> NotEq",
        "not x -> x",
        "removed call g(...)",
        "swapped first two arguments of g(...)",
        "Lt -> LtE",
        "3 -> 4",
    ]
    outputs = {mutated_source(source, i) for i in range(len(descriptions))}
    assert len(outputs) == len(descriptions)  # every mutant differs from the others
    assert "if False:" in mutated_source(source, 0)
    assert "g(b, a)" in mutated_source(source, 5)
    assert "return a <= 3" in mutated_source(source, 6)


def test_guardrail_mutants_point_at_live_functions() -> None:
    import harness.redaction as redaction

    mutants = enumerate_mutants(ROOT, "harness/redaction.py")
    assert len(mutants) > 50
    patchable = [m for m in mutants if _live_function(redaction, m.function) is not None]
    assert len(patchable) / len(mutants) > 0.9
