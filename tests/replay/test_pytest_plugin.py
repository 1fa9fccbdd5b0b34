"""The pytest plugin, driven by real pytest runs (pytester): goldens as items, the update guard,
and the JSON snapshot extension."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pytest
from pydantic import BaseModel

from replay.snapshots import to_json_data

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.tier1]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    for folder in ("goldens", "cassettes"):
        shutil.copytree(ROOT / folder, pytester.path / folder)
    shutil.rmtree(pytester.path / "goldens" / "_snapshots", ignore_errors=True)
    return pytester


def test_each_scenario_is_an_item_and_passes(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("goldens", "-q", "-p", "no:cacheprovider")
    scenarios = [p.parent.name for p in (project.path / "goldens").glob("*/scenario.yaml")]
    result.assert_outcomes(passed=len(scenarios))
    assert len(scenarios) >= 8


def test_a_regressed_golden_fails_with_the_readable_report(project: pytest.Pytester) -> None:
    trace = project.path / "goldens" / "rejection" / "trace.json"
    data = json.loads(trace.read_text())
    data["transitions"][0], data["transitions"][1] = data["transitions"][1], data["transitions"][0]
    trace.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    result = project.runpytest_subprocess(
        "goldens/rejection", "-q", "-p", "no:cacheprovider", "--golden-skip-signatures"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*rejection*REGRESSED*", "*STRUCTURAL in transitions*"])


def test_update_flag_is_refused_under_ci(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = project.runpytest_subprocess("goldens", "--golden-update", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--golden-update is refused under CI=true*"])


def test_golden_snapshot_writes_canonical_json_under_goldens(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_unit="""
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Verdict:
            action: str
            rules: tuple[str, ...]

        def test_verdict(golden_snapshot):
            assert Verdict("block", ("a", "b")) == golden_snapshot
    """
    )
    first = project.runpytest_subprocess("test_unit.py", "--snapshot-update", "-p", "no:cacheprovider")
    first.assert_outcomes(passed=1)
    stored = project.path / "goldens" / "_snapshots" / "test_unit" / "test_verdict.json"
    assert json.loads(stored.read_text()) == {
        "format_version": 1,
        "snapshot": {"action": "block", "rules": ["a", "b"]},
    }
    project.runpytest_subprocess("test_unit.py", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    stored.write_text(stored.read_text().replace('"block"', '"allow"'))
    project.runpytest_subprocess("test_unit.py", "-p", "no:cacheprovider").assert_outcomes(failed=1)
    stored.write_text(stored.read_text().replace('"format_version": 1', '"format_version": 0'))
    old = project.runpytest_subprocess("test_unit.py", "-p", "no:cacheprovider")
    old.assert_outcomes(failed=1)
    old.stdout.fnmatch_lines(["*re-record with `pytest --snapshot-update`*"])


class Colour(StrEnum):
    RED = "red"


class Shape(BaseModel):
    name: str
    colour: Colour


@dataclass
class Holder:
    shape: Shape
    tags: tuple[str, ...]


def test_snapshot_data_is_json_never_repr() -> None:
    assert to_json_data(Holder(Shape(name="sq", colour=Colour.RED), ("x",))) == {
        "shape": {"name": "sq", "colour": "red"},
        "tags": ["x"],
    }
    with pytest.raises(TypeError, match="refusing to snapshot a object by repr"):
        to_json_data({"bad": object()})
