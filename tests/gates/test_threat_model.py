"""The threat-model map and the high-risk-component map point only at tests and goldens that exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from gates import exit_criteria, threat_model
from gates.refs import golden_problem, ref_problem

pytestmark = [pytest.mark.tier0]

ROOT = Path(__file__).resolve().parents[2]


def test_every_threat_maps_to_controls_and_existing_tests_and_goldens() -> None:
    threats = threat_model.load()
    assert threat_model.problems(threats) == []
    assert {t.id for t in threats} >= set(threat_model.REQUIRED_THREATS)


def test_rendered_markdown_is_current() -> None:
    rendered = threat_model.render(threat_model.load())
    assert (ROOT / "docs" / "threat-model.md").read_text(encoding="utf-8") == rendered, (
        "docs/threat-model.md is stale: run `.venv/bin/python -m gates threat-model --write`"
    )


def test_every_high_risk_component_has_an_existing_destructive_path_test() -> None:
    components = exit_criteria.load_components()
    assert len(components) >= 8
    assert exit_criteria.component_problems(components) == []


def test_a_missing_test_or_golden_is_reported(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_here():\n    pass\n")
    assert ref_problem("tests/test_a.py::test_here", root=tmp_path) is None
    assert "defines no test_gone" in str(ref_problem("tests/test_a.py::test_gone", root=tmp_path))
    assert "no such test file" in str(ref_problem("tests/test_b.py", root=tmp_path))
    assert "missing scenario.yaml" in str(golden_problem("nope", root=tmp_path))
    broken = threat_model.Threat("dos", "DoS", "", ("limits",), ("tests/test_a.py::test_gone",), ("nope",))
    found = threat_model.problems([broken], root=tmp_path)
    assert any("test_gone" in p for p in found) and any("golden nope" in p for p in found)
    assert any("authz-bypass is not in the map" in p for p in found)
