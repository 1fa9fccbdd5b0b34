"""The threat-model map (docs/threat-model.yaml): load, check every reference, render Markdown."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gates.refs import ROOT, golden_problem, ref_problem

REQUIRED_THREATS = (
    "authz-bypass",
    "tenant-isolation",
    "audit-tampering",
    "pii-leakage",
    "injection",
    "exfiltration",
    "replay-attacks",
    "dos",
)
MAP = ROOT / "docs" / "threat-model.yaml"


@dataclass(frozen=True)
class Threat:
    id: str
    title: str
    description: str
    controls: tuple[str, ...]
    tests: tuple[str, ...]
    goldens: tuple[str, ...]


def load(path: Path = MAP) -> list[Threat]:
    """Every threat of the map, in file order."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Threat(
            id=t["id"],
            title=t["title"],
            description=t.get("description", ""),
            controls=tuple(t.get("controls") or ()),
            tests=tuple(t.get("tests") or ()),
            goldens=tuple(t.get("goldens") or ()),
        )
        for t in data["threats"]
    ]


def problems(threats: list[Threat], *, root: Path = ROOT) -> list[str]:
    """What is wrong with the map: a missing threat, an empty row, a reference that does not exist."""
    found: list[str] = []
    ids = [t.id for t in threats]
    found += [f"threat {t} is not in the map" for t in REQUIRED_THREATS if t not in ids]
    for t in threats:
        if not t.controls:
            found.append(f"threat {t.id}: no control listed")
        if not t.tests:
            found.append(f"threat {t.id}: no test listed")
        found += [f"threat {t.id}: {p}" for ref in t.tests if (p := ref_problem(ref, root=root))]
        found += [f"threat {t.id}: {p}" for g in t.goldens if (p := golden_problem(g, root=root))]
    return found


def render(threats: list[Threat]) -> str:
    """The map as Markdown (docs/threat-model.md is this, regenerated)."""
    lines = [
        "# Threat model map",
        "",
        "Generated from `docs/threat-model.yaml` by `python -m gates threat-model --write`; edit the YAML.",
        "`tests/gates/test_threat_model.py` fails when a listed test or golden does not exist.",
        "",
    ]
    for t in threats:
        lines += [f"## {t.title} (`{t.id}`)", "", t.description, "", "Controls:", ""]
        lines += [f"- {c}" for c in t.controls]
        lines += ["", "Proven by:", ""]
        lines += [f"- `{ref}`" for ref in t.tests]
        lines += [f"- golden `{g}`" for g in t.goldens]
        lines.append("")
    return "\n".join(lines)
