"""A pytest plugin writing one JSON record per test: outcome, duration, tier and extra markers.

Load it with ``-p gates.report_plugin --gates-report=PATH``. It reads the markers from each
report's keywords, so it works the same under pytest-xdist (the controller writes the file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gates.refs import ROOT

MARKERS = ("tier0", "tier1", "tier2", "tier3", "security", "postgres", "e2e")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("gates").addoption(
        "--gates-report", default=None, metavar="PATH", help="write per-test outcomes as JSON to PATH"
    )


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--gates-report")
    # xdist workers: the controller writes. Nested sessions (pytester, subprocess runs inside a
    # test) inherit PYTEST_ADDOPTS but have another rootdir: only the repository's own run writes.
    if path and not hasattr(config, "workerinput") and config.rootpath.resolve() == ROOT:
        config.pluginmanager.register(_Recorder(Path(path)), "gates-recorder")


class _Recorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tests: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.tests.setdefault(
            report.nodeid,
            {
                "outcome": "passed",
                "duration": 0.0,
                "markers": sorted(k for k in MARKERS if k in report.keywords),
            },
        )
        entry["duration"] = round(entry["duration"] + report.duration, 4)
        if report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "xfailed" if hasattr(report, "wasxfail") else "skipped"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        seed = session.config.getoption("randomly_seed", default=None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"exitstatus": int(exitstatus), "seed": seed, "tests": self.tests}
        self.path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def load(path: Path) -> dict[str, Any]:
    """A report written by this plugin."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
