"""The session refuses to start with a real-looking provider key in its environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.envguard import looks_real, real_looking_keys

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.tier0, pytest.mark.security]

ROOT = Path(__file__).resolve().parents[2]
# Assembled at run time so no key-shaped literal sits in the repository.
REAL_OPENAI = "sk-" + "proj-" + "Q7x" * 16
REAL_ANTHROPIC = "sk-ant-" + "api03-" + "Zr9_" * 12


@pytest.mark.parametrize("value", [REAL_OPENAI, REAL_ANTHROPIC, "sk-" + "a1B2" * 10, "AIza" + "x9" * 18])
def test_live_key_shapes_look_real(value: str) -> None:
    assert looks_real(value)


@pytest.mark.parametrize(
    "value", ["", "sk-sim-local-not-a-secret", "sk-test-" + "a" * 40, "fake-key", "sk-abc", "changeme"]
)
def test_synthetic_and_short_values_do_not(value: str) -> None:
    assert not looks_real(value)


def test_names_are_reported_never_values() -> None:
    env = {"OPENAI_API_KEY": REAL_OPENAI, "ANTHROPIC_API_KEY": "sk-test", "MY_VENDOR_API_KEY": REAL_ANTHROPIC}
    assert real_looking_keys(env) == ["MY_VENDOR_API_KEY", "OPENAI_API_KEY"]


def _session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, **env: str) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makeini("[pytest]\nmarkers =\n    tier0: t0\n")
    pytester.makepyfile(test_x="import pytest\npytestmark = [pytest.mark.tier0]\ndef test_x(): pass\n")
    return pytester.runpytest_subprocess("-p", "gates.pytest_gates", "-p", "no:randomly", "-q")


def test_session_with_a_real_looking_key_refuses_to_start(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _session(pytester, monkeypatch, ANTHROPIC_API_KEY=REAL_ANTHROPIC)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "refusing to run the tests: ANTHROPIC_API_KEY" in err
    assert REAL_ANTHROPIC not in err + result.stdout.str()
    assert "passed" not in result.stdout.str()


def test_session_with_a_synthetic_key_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _session(pytester, monkeypatch, OPENAI_API_KEY="sk-sim-local-not-a-secret")
    result.assert_outcomes(passed=1)
