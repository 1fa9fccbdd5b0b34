"""Mutation testing of the guardrail modules: mutmut 3 per module, plus hand-written mutants.

Each module (gates/mutation_modules.yaml) is mutated in its own scratch copy of the repository
(``.mutation/<module>``), one module at a time, with only that module's fast tests selected.
mutmut mutates function bodies; tables, regexes and code run at import time are covered by
the hand-written mutants in gates/hand_mutants.yaml, each applied to a copy and expected to make
the module's tests fail. Survivors listed with a reason in gates/equivalent_mutants.yaml are
equivalent (no test can tell them apart) and leave the denominator. Score = killed / (mutants -
equivalent); timeouts count as killed, "no tests" as survived. The gate wants >= threshold per module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gates.refs import ROOT

HERE = Path(__file__).resolve().parent
SCRATCH = ROOT / ".mutation"
RESULTS = ROOT / ".gates" / "mutation.json"
COPY = ("harness", "replay", "gates", "tests", "goldens", "cassettes", "pyproject.toml")
KILLED = {"killed", "timeout", "segfault"}  # the tests noticed
SKIP = {"skipped", "not checked"}


@dataclass
class ModuleScore:
    key: str
    total: int = 0
    killed: int = 0
    equivalent: int = 0
    survivors: list[str] = field(default_factory=list)
    hand_total: int = 0
    hand_killed: int = 0
    error: str = ""

    @property
    def score(self) -> float:
        denominator = self.total + self.hand_total - self.equivalent
        return (self.killed + self.hand_killed) / denominator if denominator > 0 else 0.0


def load_modules(path: Path = HERE / "mutation_modules.yaml") -> tuple[dict[str, Any], float]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data["modules"], float(data["threshold"])


def load_equivalent(path: Path = HERE / "equivalent_mutants.yaml") -> dict[str, str]:
    """Mutant name -> why it is equivalent."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("equivalent") or []
    return {e["mutant"]: f"{e.get('kind', 'equivalent')}: {e['reason']}" for e in entries}


def load_hand_mutants(path: Path = HERE / "hand_mutants.yaml") -> list[dict[str, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    mutants: list[dict[str, str]] = data.get("mutants") or []
    return mutants


def _scratch(key: str, spec: dict[str, Any]) -> Path:
    """A fresh copy of the repository with a [tool.mutmut] section for this module only."""
    work = SCRATCH / key
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".harness", "*.new")
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, work / name)
    tests = [t for t in spec["tests"] if (ROOT / t).exists()]
    config = {
        "source_paths": ["harness"],
        "only_mutate": list(spec["sources"]),
        "also_copy": ["replay", "gates", "goldens", "cassettes"],
        "pytest_add_cli_args": ["-p", "no:xdist"],
        "debug": True,
        "pytest_add_cli_args_test_selection": tests,
    }
    with (work / "pyproject.toml").open("a", encoding="utf-8") as f:
        f.write("\n[tool.mutmut]\n")
        for k, v in config.items():
            f.write(f"{k} = {json.dumps(v)}\n")
    return work


def _mutmut(work: Path, *args: str, log: Path) -> int:
    mutmut = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with log.open("ab") as out:
        # argv is fixed here; the mutant names come from mutmut's own results
        return subprocess.call([str(mutmut), *args], cwd=work, stdout=out, stderr=subprocess.STDOUT, env=env)  # noqa: S603


def _results(work: Path) -> dict[str, str]:
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run(  # noqa: S603
        [str(mutmut), "results", "--all", "true"], cwd=work, capture_output=True, text=True, check=False
    ).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name:
            found[name] = status.strip()
    return found


def run_module(
    key: str, spec: dict[str, Any], *, equivalent: dict[str, str], hand: list[dict[str, str]]
) -> ModuleScore:
    """Mutate one module with mutmut and its hand-written mutants; score it."""
    score = ModuleScore(key)
    work = _scratch(key, spec)
    log = ROOT / ".gates" / "logs" / f"mutation-{key}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    code = _mutmut(work, "run", "--max-children", "1", log=log)
    results = _results(work)
    if code != 0 and not results:
        score.error = f"mutmut run failed (exit {code}); see {log.relative_to(ROOT)}"
    for name, status in sorted(results.items()):
        if status in SKIP:
            continue
        score.total += 1
        if status in KILLED:
            score.killed += 1
        elif name in equivalent:
            score.equivalent += 1
        else:
            score.survivors.append(f"{name} ({status})")
    for mutant in [m for m in hand if m["module"] == key]:
        score.hand_total += 1
        if _hand_mutant_killed(work, spec, mutant, log=log):
            score.hand_killed += 1
        else:
            score.survivors.append(f"hand:{mutant['id']} ({mutant['why']})")
    _write_survivor_diffs(work, key, [n for n, st in results.items() if st not in KILLED | SKIP])
    return score


def _write_survivor_diffs(work: Path, key: str, names: list[str]) -> None:
    """Every surviving mutant's diff, for review, in .gates/mutation-<key>-survivors.txt."""
    mutmut = Path(sys.executable).with_name("mutmut")
    chunks = []
    for name in sorted(names):
        shown = subprocess.run(  # noqa: S603
            [str(mutmut), "show", name], cwd=work, capture_output=True, text=True, check=False
        ).stdout
        chunks.append(f"### {name}\n{shown}")
    (ROOT / ".gates" / f"mutation-{key}-survivors.txt").write_text("\n".join(chunks), encoding="utf-8")


def _hand_mutant_killed(work: Path, spec: dict[str, Any], mutant: dict[str, str], *, log: Path) -> bool:
    target = work / mutant["file"]
    original = target.read_text(encoding="utf-8")
    if original.count(mutant["find"]) != 1:
        raise SystemExit(f"hand mutant {mutant['id']}: 'find' must occur exactly once in {mutant['file']}")
    target.write_text(original.replace(mutant["find"], mutant["replace"]), encoding="utf-8")
    try:
        tests = [t for t in spec["tests"] if (work / t).exists()]
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            *tests,
        ]
        with log.open("ab") as out:
            code = subprocess.call(argv, cwd=work, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        return code == 1  # tests ran and failed; 2-5 would be a broken mutant, not a kill
    finally:
        target.write_text(original, encoding="utf-8")


def table(scores: list[ModuleScore], threshold: float) -> str:
    lines = [f"{'module':<12} {'score':>7} {'killed':>7} {'mutants':>8} {'equiv':>6} {'hand':>6}  verdict"]
    for s in scores:
        verdict = s.error or ("pass" if s.score >= threshold else f"FAIL (< {threshold:.0%})")
        lines.append(
            f"{s.key:<12} {s.score:>7.1%} {s.killed + s.hand_killed:>7} {s.total + s.hand_total:>8} "
            f"{s.equivalent:>6} {s.hand_killed}/{s.hand_total:<4}  {verdict}"
        )
    return "\n".join(lines)


def main(*, modules: list[str], threshold: float | None = None) -> int:
    specs, default_threshold = load_modules()
    threshold = default_threshold if threshold is None else threshold
    unknown = [m for m in modules if m not in specs]
    if unknown:
        print(
            f"gates mutation: unknown module(s) {', '.join(unknown)}; choose from {', '.join(specs)}",
            file=sys.stderr,
        )
        return 2
    equivalent, hand = load_equivalent(), load_hand_mutants()
    scores = []
    for key in modules or list(specs):  # one module at a time: mutation runs are CPU-heavy
        print(f"-> mutating {key}: {', '.join(specs[key]['sources'])}", flush=True)
        scores.append(run_module(key, specs[key], equivalent=equivalent, hand=hand))
        print(f"   {scores[-1].score:.1%} killed", flush=True)
    print("== mutation summary")
    print(table(scores, threshold))
    for s in scores:
        for name in s.survivors[:5]:
            print(f"  survivor {s.key}: {name}")
        if len(s.survivors) > 5:
            print(
                f"  ... {len(s.survivors) - 5} more survivors of {s.key}: "
                f".gates/mutation-{s.key}-survivors.txt"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps([s.__dict__ | {"score": s.score} for s in scores], indent=1) + "\n")
    ok = all(not s.error and s.score >= threshold for s in scores)
    print("mutation gate: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1
