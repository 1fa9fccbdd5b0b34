"""`golden_snapshot` honours syrupy's exclude=, include= and matcher= (real pytest runs)."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.tier1]

TESTS = """
from datetime import datetime, timezone
from syrupy.filters import props, paths
from syrupy.matchers import path_type

AT = datetime(2026, 1, DAY, tzinfo=timezone.utc)
ROW = {"id": ID, "name": "alice", "nested": {"id": 7, "kept": True}, "at": AT}

def at_is_a_time(data, path):
    return "<time>"

def test_exclude(golden_snapshot):
    assert {k: v for k, v in ROW.items() if k != "at"} == golden_snapshot(exclude=props("id"))

def test_paths(golden_snapshot):
    assert {k: v for k, v in ROW.items() if k != "at"} == golden_snapshot(exclude=paths("nested.id"))

def test_matcher(golden_snapshot):
    assert ROW == golden_snapshot(matcher=path_type({"at": (datetime,)}, replacer=at_is_a_time))
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "goldens").mkdir()
    return pytester


def _write(project: pytest.Pytester, *, id_: int, day: int) -> None:
    project.makepyfile(test_rows=TESTS.replace("ID", str(id_)).replace("DAY", str(day)))


def _stored(project: pytest.Pytester, name: str) -> object:
    path = project.path / "goldens" / "_snapshots" / "test_rows" / f"{name}.json"
    return json.loads(path.read_text())["snapshot"]


def test_exclude_and_matcher_are_applied(project: pytest.Pytester) -> None:
    _write(project, id_=1, day=1)
    project.runpytest_subprocess("--snapshot-update", "-p", "no:cacheprovider").assert_outcomes(passed=3)
    assert _stored(project, "test_exclude") == {"name": "alice", "nested": {"kept": True}}
    assert _stored(project, "test_paths") == {"id": 1, "name": "alice", "nested": {"kept": True}}
    assert _stored(project, "test_matcher")["at"] == "<time>"  # type: ignore[index]
    # A new id and a new time: the excluded and matched fields do not fail the tests ...
    _write(project, id_=2, day=2)
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-k", "exclude or matcher")
    result.assert_outcomes(passed=1, failed=1)
    # ... except the top-level id that test_matcher still compares (it only masks "at").
    result.stdout.fnmatch_lines(["*FAILED*test_matcher*"])
    # paths("nested.id") excludes only the nested id: the top-level one is still compared.
    project.runpytest_subprocess("-p", "no:cacheprovider", "-k", "paths").assert_outcomes(failed=1)
