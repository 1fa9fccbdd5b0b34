"""The replay engine's public face: run scenarios against signed goldens, diff traces and report.

The errors are imported eagerly (tiny, and every entry point needs them); everything else
loads on first use, because the engine pulls in the whole harness app (FastAPI, SQLAlchemy)
and ``import replay`` runs on every pytest start (the plugin) and every ``harness-replay`` call.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from replay.errors import (
    CassetteMiss,
    FormatVersionError,
    GoldenMissing,
    ReplayError,
    ScenarioError,
    SignatureError,
    UpdateRefused,
)

if TYPE_CHECKING:
    from replay.diff import diff_trace_bytes, diff_traces
    from replay.engine import run_scenario
    from replay.gate import check, record
    from replay.provider_sim import SimulatorHandle, start_simulator
    from replay.report import render_json, render_junit_xml, render_markdown, render_text
    from replay.results import DiffClass, Difference, ScenarioResult, ScenarioStatus, TraceDiff
    from replay.signing import sign_golden, verify_all, verify_golden
    from replay.sim_script import SimScript, load_script
    from replay.store import GoldenStore

__all__ = [
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

_LAZY: dict[str, str] = {
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # Only what is loaded: tools that walk dir() and getattr() every name (freezegun scans every
    # module when it starts) must not trigger the lazy imports, least of all under a frozen clock.
    return sorted(globals())
