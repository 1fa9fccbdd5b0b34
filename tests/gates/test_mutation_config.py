"""The mutation gate's inputs are well-formed: modules, hand mutants, equivalent mutants, score."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gates.mutation import ModuleScore, load_equivalent, load_hand_mutants, load_modules, table

pytestmark = [pytest.mark.tier0]

ROOT = Path(__file__).resolve().parents[2]
GUARDRAILS = {"state", "policy", "routing", "sandbox", "redaction", "guard", "signing", "idempotency"}


def test_every_guardrail_module_is_mutated_with_existing_sources_and_tests() -> None:
    modules, threshold = load_modules()
    assert set(modules) == GUARDRAILS and threshold == 0.90
    for key, spec in modules.items():
        assert all((ROOT / s).is_file() for s in spec["sources"]), key
        assert any((ROOT / t).exists() for t in spec["tests"]), key


def test_each_hand_mutant_applies_exactly_once_to_a_mutated_source() -> None:
    modules, _ = load_modules()
    mutants = load_hand_mutants()
    assert len({m["id"] for m in mutants}) == len(mutants)
    for m in mutants:
        assert m["file"] in modules[m["module"]]["sources"], m["id"]
        assert (ROOT / m["file"]).read_text().count(m["find"]) == 1, m["id"]
        assert m["find"] != m["replace"] and m["why"], m["id"]


def test_every_excluded_mutant_has_a_kind_and_a_reason() -> None:
    raw = yaml.safe_load((ROOT / "gates" / "equivalent_mutants.yaml").read_text())["equivalent"]
    hand = {m["id"] for m in load_hand_mutants()}
    for e in raw:
        assert e["kind"] in {"equivalent", "import-time"} and len(e["reason"]) > 20, e
        if e["kind"] == "import-time":
            assert set(e["covered_by"]) <= hand, e
    assert len(load_equivalent()) == len(raw)


def test_score_excludes_equivalents_and_counts_hand_mutants() -> None:
    s = ModuleScore("x", total=20, killed=16, equivalent=2, hand_total=2, hand_killed=2)
    assert s.score == pytest.approx(18 / 20)
    assert "x" in table([s], 0.9) and "pass" in table([s], 0.9)
    assert "FAIL" in table([ModuleScore("y", total=10, killed=8)], 0.9)
    assert ModuleScore("z").score == 0.0
