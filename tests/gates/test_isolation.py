"""Isolated, reproducible environments: own workspace and PG schema per environment, real timers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gates.tiers import environment_of
from harness.settings import Settings
from tests.support import db

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.tier0]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class _M:
    name: str


@dataclass
class _Item:
    nodeid: str
    marks: list[str] = field(default_factory=list)

    def iter_markers(self, name: str | None = None) -> Iterator[_M]:
        return iter([_M(m) for m in self.marks if name in (None, m)])


@pytest.mark.parametrize(
    ("nodeid", "marks", "env"),
    [
        ("tests/harness_state/test_x.py::t", ["tier0", "security"], "unit"),
        ("tests/harness_api/test_x.py::t", ["tier1"], "integration"),
        ("tests/harness_e2e/test_x.py::t", ["tier1"], "e2e"),
        ("tests/harness_state/test_x.py::t", ["tier1", "e2e"], "e2e"),
        ("tests/harness_stress/test_x.py::t", ["tier1"], "stress"),
        ("tests/harness_stress/test_x.py::t", ["tier2", "e2e"], "stress"),
        ("tests/harness_drills/test_x.py::t", ["tier3"], "drill"),
    ],
)
def test_each_test_belongs_to_one_environment(nodeid: str, marks: list[str], env: str) -> None:
    assert environment_of(_Item(nodeid, marks)) == env


def test_the_workspace_is_this_tests_own_and_never_the_repositorys(tmp_path: Path) -> None:
    data_dir = Path(os.environ["HARNESS_DATA_DIR"])
    assert os.environ["HARNESS_TEST_ENV"] == "unit"
    assert data_dir.parent.name.startswith("unit-workspace")
    assert ROOT not in data_dir.parents
    assert Settings().data_dir == data_dir  # a Settings() with no data_dir lands in the workspace


def test_postgres_schemas_are_named_for_their_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    if db.postgres_available() is not None:
        pytest.skip("needs PostgreSQL")
    with db.postgres_schema_url() as url:
        assert "search_path%3Dt_unit_" in url


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_postgres_url_counts_as_unset(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HARNESS_TEST_POSTGRES_URL", value)
    assert db.postgres_base_url() == db.DEFAULT_PG


def test_a_set_postgres_url_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_TEST_POSTGRES_URL", "postgresql://u@127.0.0.1:1/x")
    assert db.postgres_base_url() == "postgresql://u@127.0.0.1:1/x"


FROZEN_TEST = """
import pytest
from freezegun import freeze_time
pytestmark = [pytest.mark.tier0]

def test_frozen():
    import _pytest.timing as timing
    with freeze_time("2001-01-01"):
        # pytest's own clock keeps real time while the code under test sees 2001
        assert timing.time() > 1.7e9
"""


@pytest.mark.parametrize(("plugin", "passes"), [("gates.pytest_gates", True), ("no:randomly", False)])
def test_freezegun_leaves_pytests_timer_alone_only_with_the_gate(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, plugin: str, passes: bool
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini("[pytest]\nmarkers =\n    tier0: t0\n")
    pytester.makepyfile(test_frozen=FROZEN_TEST)
    result = pytester.runpytest_subprocess("-p", plugin, "-p", "no:randomly", "-q")
    result.assert_outcomes(passed=1 if passes else 0, failed=0 if passes else 1)
