"""The replay package's public face: the names it exports, where they come from, and its cost."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import replay
import replay.errors

pytestmark = pytest.mark.tier0

EXPORTED = [
    "CassetteMiss",
    "DiffClass",
    "Difference",
    "FormatVersionError",
    "GoldenMissing",
    "GoldenStore",
    "ReplayError",
    "ScenarioError",
    "ScenarioResult",
    "ScenarioStatus",
    "SignatureError",
    "SimScript",
    "SimulatorHandle",
    "TraceDiff",
    "UpdateRefused",
    "check",
    "diff_trace_bytes",
    "diff_traces",
    "load_script",
    "record",
    "render_json",
    "render_junit_xml",
    "render_markdown",
    "render_text",
    "run_scenario",
    "sign_golden",
    "start_simulator",
    "verify_all",
    "verify_golden",
]

HOMES = {
    "check": "replay.gate",
    "record": "replay.gate",
    "diff_trace_bytes": "replay.diff",
    "diff_traces": "replay.diff",
    "run_scenario": "replay.engine",
    "SimulatorHandle": "replay.provider_sim",
    "start_simulator": "replay.provider_sim",
    "render_json": "replay.report",
    "render_junit_xml": "replay.report",
    "render_markdown": "replay.report",
    "render_text": "replay.report",
    "DiffClass": "replay.results",
    "Difference": "replay.results",
    "ScenarioResult": "replay.results",
    "ScenarioStatus": "replay.results",
    "TraceDiff": "replay.results",
    "sign_golden": "replay.signing",
    "verify_all": "replay.signing",
    "verify_golden": "replay.signing",
    "SimScript": "replay.sim_script",
    "load_script": "replay.sim_script",
    "GoldenStore": "replay.store",
}


def test_exported_names_are_pinned() -> None:
    assert sorted(replay.__all__) == EXPORTED


@pytest.mark.parametrize("name", EXPORTED)
def test_each_export_is_the_object_its_home_module_defines(name: str) -> None:
    home = importlib.import_module(HOMES.get(name, "replay.errors"))
    assert getattr(replay, name) is getattr(home, name)


def test_every_error_in_the_tree_is_exported_and_rooted() -> None:
    errors = {
        name
        for name, value in vars(replay.errors).items()
        if isinstance(value, type) and issubclass(value, Exception)
    }
    assert errors <= set(replay.__all__)
    assert all(issubclass(getattr(replay.errors, name), replay.ReplayError) for name in errors)


def test_sim_script_error_is_a_scenario_error_and_still_a_value_error() -> None:
    from replay.sim_script import SimScriptError

    assert issubclass(SimScriptError, replay.ScenarioError)
    assert issubclass(SimScriptError, replay.ReplayError)
    assert issubclass(SimScriptError, ValueError)


def test_unknown_attribute_fails_like_a_module() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        replay.nonexistent  # noqa: B018


def test_import_replay_stays_light() -> None:
    # The pytest plugin and the CLI import `replay`; the engine (FastAPI, SQLAlchemy) must wait.
    probe = (
        "import sys, replay; "
        "heavy = sorted(m for m in ('replay.engine', 'replay.gate', 'replay.diff', 'fastapi', "
        "'sqlalchemy', 'pydantic', 'yaml') if m in sys.modules); print(','.join(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_signing_and_provider_sim_public_faces() -> None:
    import replay.provider_sim
    import replay.signing

    assert sorted(replay.signing.__all__) == [
        "APPROVAL_FORMAT_VERSION",
        "AUDIT_PAYLOAD_TYPE",
        "DEFAULT_REASON",
        "GoldenVerification",
        "STATEMENT_FORMAT_VERSION",
        "TRACE_FORMAT_VERSION",
        "VERIFY_FORMAT_VERSION",
        "append_approval",
        "load_trusted_keys",
        "render_verify_table",
        "resolve_approver",
        "sign_golden",
        "signer_from_env",
        "utc_now",
        "verify_all",
        "verify_golden",
        "verify_json",
    ]
    assert sorted(replay.provider_sim.__all__) == [
        "MAX_BODY_BYTES",
        "RecordedRequest",
        "SimulatorHandle",
        "main",
        "start_simulator",
        "validate_chat_request",
    ]
    for module in (replay.signing, replay.provider_sim):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_dir_does_not_trigger_lazy_imports() -> None:
    """freezegun walks dir() + getattr() of every module when it starts; that must stay cheap."""
    import subprocess
    import sys

    code = (
        "import sys, replay\n"
        "[getattr(replay, n) for n in dir(replay)]\n"
        "heavy = ('replay.engine', 'replay.gate', 'fastapi', 'sqlalchemy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
