"""References from the policy files to tests and goldens, and whether they exist."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@cache
def _defined_tests(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
    return frozenset(names)


def ref_problem(ref: str, *, root: Path = ROOT) -> str | None:
    """None when ``ref`` ("path" or "path::name[::name]") names an existing test; else why not."""
    path_part, _, rest = ref.partition("::")
    path = root / path_part
    if not path.is_file():
        return f"{ref}: no such test file {path_part}"
    for name in [n for n in rest.split("::") if n]:
        if name.split("[", 1)[0] not in _defined_tests(path):
            return f"{ref}: {path_part} defines no {name}"
    return None


def golden_problem(name: str, *, root: Path = ROOT) -> str | None:
    """None when ``goldens/NAME`` holds a scenario and a recorded trace; else why not."""
    folder = root / "goldens" / name
    missing = [f for f in ("scenario.yaml", "trace.json") if not (folder / f).is_file()]
    if missing:
        return f"golden {name}: missing {', '.join(missing)} under goldens/{name}"
    return None
