"""The collection hook: a run fails unless every test carries exactly one tier marker."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.tier0]

ROOT = Path(__file__).resolve().parents[2]
MARKERS = """
[pytest]
markers =
    tier0: t0
    tier1: t1
    tier2: t2
    tier3: t3
    security: s
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini(MARKERS)
    return pytester


def _run(suite: pytest.Pytester) -> pytest.RunResult:
    return suite.runpytest_subprocess("-p", "gates.pytest_gates", "-p", "no:randomly", "-q")


def test_one_tier_plus_security_runs(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_ok="""
        import pytest
        pytestmark = [pytest.mark.tier1, pytest.mark.security]
        def test_a(): assert True
        """
    )
    result = _run(suite)
    result.assert_outcomes(passed=1)
    assert result.ret == 0


def test_a_test_without_a_tier_fails_the_run_by_name(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_none="""
        import pytest
        pytestmark = [pytest.mark.security]
        def test_untiered(): assert True
        """
    )
    result = _run(suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_none.py::test_untiered: no tier marker*"])


def test_two_tiers_fail_the_run_even_when_one_is_on_the_function(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_two="""
        import pytest
        pytestmark = [pytest.mark.tier0]
        @pytest.mark.tier2
        def test_double(): assert True
        def test_single(): assert True
        """
    )
    result = _run(suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*1 test(s) do not carry exactly one tier marker*"])
    result.stderr.fnmatch_lines(["*test_two.py::test_double: 2 tier markers (tier0, tier2)*"])
    assert "test_single" not in result.stderr.str()


def test_the_real_suite_collects_with_the_hook_active() -> None:
    # The hook is wired into tests/conftest.py: the names pytest looks up are there.
    import tests.conftest as conftest
    from gates import pytest_gates

    assert conftest.pytest_collection_modifyitems is pytest_gates.pytest_collection_modifyitems
    assert conftest.pytest_configure is pytest_gates.pytest_configure
