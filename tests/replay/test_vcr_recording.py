"""pytest-recording with the project's scrubbing and matcher, as its users expect:
`--record-mode=once|new_episodes|none` against the provider simulator, and no network in tier0."""

from __future__ import annotations

import pytest
import yaml

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.tier1]

TEST_MODULE = """
import os
import pytest
from openai import OpenAI
from replay.provider_sim import start_simulator
from replay.sim_script import parse_script

SCRIPT = parse_script(
    {"format_version": 1, "default": {"turns": [{"content": "hello from the sim"}]}}, source="t"
)

@pytest.fixture
def base_url():
    if os.environ.get("SIM") == "off":  # replay must not need the simulator (any port matches)
        yield "http://127.0.0.1:9/v1"
        return
    with start_simulator(SCRIPT) as sim:
        yield sim.base_url

@pytest.mark.vcr
def test_chat(base_url):
    client = OpenAI(base_url=base_url, api_key="sk-test-not-a-real-key-0123456789", max_retries=0)
    answer = client.chat.completions.create(
        model="sim-small", temperature=0, seed=1, messages=[{"role": "user", "content": "PROMPT"}]
    )
    assert answer.choices[0].message.content == "hello from the sim"
"""


def _module(pytester: pytest.Pytester, prompt: str) -> None:
    pytester.makepyfile(test_chat=TEST_MODULE.replace("PROMPT", prompt))


def _interactions(pytester: pytest.Pytester) -> list[dict[str, object]]:
    cassette = pytester.path / "cassettes" / "test_chat" / "test_chat.yaml"
    return yaml.safe_load(cassette.read_text())["interactions"]  # type: ignore[no-any-return]


def test_record_modes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _module(pytester, "hi")
    pytester.runpytest_subprocess("--record-mode=once", "-p", "no:cacheprovider").assert_outcomes(
        passed=1
    )
    [recorded] = _interactions(pytester)
    request = recorded["request"]
    assert isinstance(request, dict)
    assert request["uri"] == "https://provider.sim/v1/chat/completions"  # scrubbed origin, no port
    text = (pytester.path / "cassettes" / "test_chat" / "test_chat.yaml").read_text()
    assert "sk-test-not-a-real-key" not in text and "authorization" not in text.lower()

    monkeypatch.setenv("SIM", "off")
    pytester.runpytest_subprocess("--record-mode=none", "-p", "no:cacheprovider").assert_outcomes(
        passed=1
    )
    _module(pytester, "a changed prompt")
    missed = pytester.runpytest_subprocess("--record-mode=none", "-p", "no:cacheprovider")
    missed.assert_outcomes(failed=1)
    missed.stdout.fnmatch_lines(["*CannotOverwriteExistingCassetteException*"])

    monkeypatch.delenv("SIM")
    pytester.runpytest_subprocess(
        "--record-mode=new_episodes", "-p", "no:cacheprovider"
    ).assert_outcomes(passed=1)
    assert len(_interactions(pytester)) == 2


def test_tier0_tests_have_no_network_but_loopback(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    tier0: unit\n")
    pytester.makepyfile(
        test_net="""
        import socket
        import pytest

        pytestmark = [pytest.mark.tier0]

        def test_outside_is_blocked():
            with pytest.raises(Exception, match="Network is disabled"):
                socket.create_connection(("192.0.2.1", 80), timeout=1)

        def test_loopback_is_allowed():
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            socket.create_connection(server.getsockname(), timeout=5).close()
            server.close()
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
