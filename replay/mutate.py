"""Golden mutation score: mutate the guardrail modules and count how many mutants ``check`` catches.

Operators (AST level, inside function bodies only): comparison flips (``==``/``!=``, ``<``/``<=``,
``in``/``not in``, ``is``/``is not``), boolean flips (``and``/``or``, ``not x`` -> ``x``, ``True``/
``False``), integer constants (``n`` -> ``n + 1``), removed calls (a call statement becomes
``pass``), removed conditions (``if c:`` -> ``if False:``) and swapped arguments (the first two
positional arguments of a call).

A mutant replaces the ``__code__`` of its enclosing top-level function or method in the live
module, so every ``from x import f`` binding sees it; worker processes load the harness once and
run a batch of mutants each. Only the goldens that executed the mutated line (coverage contexts)
replay it, stopping at the first failing one; a mutant on a line no golden executes is reported
as *uncovered*, never as survived.
"""

from __future__ import annotations

import ast
import json
import multiprocessing
import signal
import sys
import tempfile
import types
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from replay.golden_coverage import GUARDRAIL_MODULES, CoverageReport, run_coverage

MUTANT_TIMEOUT_SECONDS = 120

_FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


@dataclass(frozen=True)
class Mutant:
    module: str  # harness/redaction.py
    index: int  # the site's position in the module's walk order
    line: int
    function: str  # qualname of the enclosing top-level function or method
    description: str


@dataclass(frozen=True)
class MutantResult:
    mutant: Mutant
    status: str  # "killed" | "survived" | "uncovered" | "skipped"
    detail: str = ""
    scenarios: tuple[str, ...] = ()


def _sites(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str, Any]]:
    """(node, enclosing function qualname, description, how to mutate) for each site, in order."""

    def walk(node: ast.AST, qual: str | None, prefix: str) -> Iterator[tuple[ast.AST, str, str, Any]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef) and qual is None:
                yield from walk(child, None, f"{prefix}{child.name}.")
                continue
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                if qual is None:
                    yield from walk(child, f"{prefix}{child.name}", prefix)
                else:
                    yield from walk(child, qual, prefix)
                continue
            if qual is not None:
                yield from _child_sites(child, qual)
            yield from walk(child, qual, prefix)

    yield from walk(tree, None, "")


def _child_sites(node: ast.AST, qual: str) -> Iterator[tuple[ast.AST, str, str, Any]]:
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _FLIPS:
                flipped = _FLIPS[type(op)]
                yield node, qual, f"{type(op).__name__} -> {flipped.__name__}", ("cmp", i)
    elif isinstance(node, ast.BoolOp):
        other = "Or" if isinstance(node.op, ast.And) else "And"
        yield node, qual, f"{type(node.op).__name__} -> {other}", ("boolop",)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield node, qual, "not x -> x", ("not",)
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield node, qual, f"{node.value} -> {not node.value}", ("bool",)
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        yield node, qual, f"{node.value} -> {node.value + 1}", ("int",)
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield node, qual, f"removed call {ast.unparse(node.value.func)}(...)", ("dropcall",)
    elif isinstance(node, ast.If):
        yield node, qual, f"if {_short(node.test)} -> if False", ("dropif",)
    if (
        isinstance(node, ast.Call)
        and len(node.args) >= 2
        and not any(isinstance(a, ast.Starred) for a in node.args[:2])
    ):
        yield node, qual, f"swapped first two arguments of {_short(node.func)}(...)", ("swap",)


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 50 else text[:49] + "…"


def enumerate_mutants(root: Path, module: str) -> list[Mutant]:
    tree = ast.parse((root / module).read_text(encoding="utf-8"))
    return [
        Mutant(module, i, getattr(node, "lineno", 0), qual, desc)
        for i, (node, qual, desc, _how) in enumerate(_sites(tree))
    ]


def mutated_source(source: str, index: int) -> str:
    """``source`` with site ``index`` mutated."""
    tree = ast.parse(source)
    for i, (node, _qual, _desc, how) in enumerate(_sites(tree)):
        if i != index:
            continue
        kind = how[0]
        if kind == "cmp":
            assert isinstance(node, ast.Compare)
            node.ops[how[1]] = _FLIPS[type(node.ops[how[1]])]()
        elif kind == "boolop":
            assert isinstance(node, ast.BoolOp)
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif kind == "not":
            assert isinstance(node, ast.UnaryOp)
            _replace(tree, node, node.operand)
        elif kind == "bool":
            assert isinstance(node, ast.Constant)
            node.value = not node.value
        elif kind == "int":
            assert isinstance(node, ast.Constant) and type(node.value) is int
            node.value = int(node.value) + 1
        elif kind == "dropcall":
            _replace(tree, node, ast.Pass())
        elif kind == "dropif":
            assert isinstance(node, ast.If)
            node.test = ast.Constant(False)
        elif kind == "swap":
            assert isinstance(node, ast.Call)
            node.args[0], node.args[1] = node.args[1], node.args[0]
        return ast.unparse(ast.fix_missing_locations(tree))
    raise IndexError(f"no mutation site {index}")


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list) and any(v is old for v in value):
                value[next(i for i, v in enumerate(value) if v is old)] = new
                return


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield const
            yield from _codes(const)


def _live_function(module: types.ModuleType, qualname: str) -> types.FunctionType | None:
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None) if not isinstance(obj, type) else obj.__dict__.get(part)
        if obj is None:
            return None
    if isinstance(obj, staticmethod | classmethod):
        obj = obj.__func__
    if isinstance(obj, property):
        obj = obj.fget
    obj = getattr(obj, "__wrapped__", obj)
    return obj if isinstance(obj, types.FunctionType) else None


# --- worker side ---------------------------------------------------------------------------


def _timeout(_signum: int, _frame: Any) -> None:
    raise TimeoutError(f"mutant ran longer than {MUTANT_TIMEOUT_SECONDS}s")


def _run_batch(args: tuple[str, list[tuple[Mutant, tuple[str, ...]]]]) -> list[MutantResult]:
    root_text, batch = args
    import importlib

    from harness.observability import configure_logging
    from replay.gate import check
    from replay.store import GoldenStore

    configure_logging(level="CRITICAL")
    root = Path(root_text)
    store = GoldenStore(root)
    signal.signal(signal.SIGALRM, _timeout)
    results = []
    for mutant, scenarios in batch:
        module = importlib.import_module(mutant.module.removesuffix(".py").replace("/", "."))
        source = (root / mutant.module).read_text(encoding="utf-8")
        try:
            compiled = compile(mutated_source(source, mutant.index), str(root / mutant.module), "exec")
        except (SyntaxError, ValueError, IndexError) as exc:
            results.append(MutantResult(mutant, "skipped", f"does not compile: {exc}"))
            continue
        target = _live_function(module, mutant.function)
        new_code = next((c for c in _codes(compiled) if c.co_qualname == mutant.function), None)
        if (
            target is None
            or new_code is None
            or len(new_code.co_freevars) != len(target.__code__.co_freevars)
        ):
            results.append(MutantResult(mutant, "skipped", "no live function to patch"))
            continue
        original = target.__code__
        target.__code__ = new_code
        killed_by = ""
        try:
            signal.alarm(MUTANT_TIMEOUT_SECONDS)
            for name in scenarios:
                outcome = check(store, [name], ci=True, verify_signatures=False)
                failed = [r for r in outcome.results if r.status.failed]
                if failed:
                    killed_by = f"{name}: {failed[0].status.value}"
                    break
        except BaseException as exc:  # a mutant that crashes the replay (or hangs) is caught
            killed_by = f"replay crashed: {type(exc).__name__}"
        finally:
            signal.alarm(0)
            target.__code__ = original
        status = "killed" if killed_by else "survived"
        results.append(MutantResult(mutant, status, killed_by, scenarios))
        print(
            f"mutate: {mutant.module}:{mutant.line} {mutant.description}: {status}",
            file=sys.stderr,
            flush=True,
        )
    return results


# --- driver -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MutationRun:
    results: tuple[MutantResult, ...]

    def score(self, module: str | None = None) -> tuple[int, int, float]:
        """(killed, killed + survived, score %) over covered mutants of ``module`` (or all)."""
        chosen = [r for r in self.results if module is None or r.mutant.module == module]
        killed = sum(r.status == "killed" for r in chosen)
        judged = killed + sum(r.status == "survived" for r in chosen)
        return killed, judged, (100.0 * killed / judged if judged else 100.0)

    def to_json_text(self) -> str:
        return json.dumps(
            [
                {**asdict(r.mutant), **{k: v for k, v in asdict(r).items() if k != "mutant"}}
                for r in self.results
            ],
            indent=2,
        )


def _sample(items: list[Any], limit: int | None) -> list[Any]:
    if limit is None or len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def run_mutation(
    root: Path,
    modules: Sequence[str] = (),
    *,
    jobs: int = 2,
    limit: int | None = None,
    coverage: CoverageReport | None = None,
) -> MutationRun:
    """Mutate ``modules`` (default: the guardrail modules) and replay the goldens against each mutant."""
    chosen = [m if m.startswith("harness/") else f"harness/{m}" for m in modules]
    chosen = chosen or list(GUARDRAIL_MODULES)
    for module in chosen:
        if not (root / module).is_file():
            raise ValueError(f"no module {module} under {root}; name it like harness/redaction.py")
    report = coverage or run_coverage(root)
    work: list[tuple[Mutant, tuple[str, ...]]] = []
    results: list[MutantResult] = []
    for module in chosen:
        cov = report.module(module)
        for mutant in _sample(enumerate_mutants(root, module), limit):
            scenarios = cov.scenarios_by_line.get(mutant.line, ()) if cov else ()
            if not scenarios:
                results.append(MutantResult(mutant, "uncovered", "no golden executes this line"))
            else:
                work.append((mutant, scenarios))
    batches = [work[i::jobs] for i in range(jobs) if work[i::jobs]]
    if batches:
        ctx = multiprocessing.get_context("spawn")
        with tempfile.TemporaryDirectory(), ctx.Pool(len(batches), maxtasksperchild=1) as pool:
            for batch_results in pool.imap_unordered(_run_batch, [(str(root.resolve()), b) for b in batches]):
                results.extend(batch_results)
    results.sort(key=lambda r: (r.mutant.module, r.mutant.index))
    return MutationRun(tuple(results))


def render_mutation_report(run: MutationRun) -> str:
    lines = [f"{'module':40} {'killed':>7} {'survived':>9} {'uncovered':>10} {'score':>7}"]
    for module in sorted({r.mutant.module for r in run.results}):
        of = [r for r in run.results if r.mutant.module == module]
        killed, judged, score = run.score(module)
        uncovered = sum(r.status == "uncovered" for r in of)
        lines.append(f"{module:40} {killed:7d} {judged - killed:9d} {uncovered:10d} {score:6.1f}%")
    killed, judged, score = run.score()
    lines.append(f"golden mutation score: {score:.1f}% ({killed} of {judged} covered mutants caught)")
    survivors = [r for r in run.results if r.status == "survived"]
    if survivors:
        lines.append("survivors (a scenario that takes this path and pins its outcome would catch them):")
        for r in survivors:
            m = r.mutant
            ran = ", ".join(r.scenarios[:3]) + ("…" if len(r.scenarios) > 3 else "")
            lines.append(f"  {m.module}:{m.line} in {m.function}: {m.description}  [replayed: {ran}]")
    skipped = sum(r.status == "skipped" for r in run.results)
    if skipped:
        lines.append(f"{skipped} mutant(s) skipped (did not compile or could not be patched)")
    return "\n".join(lines)
