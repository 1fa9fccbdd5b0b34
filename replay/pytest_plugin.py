"""pytest plugin: every ``goldens/<name>/scenario.yaml`` is a test item (``pytest goldens/``).

Options live in one group, prefixed ``--golden-``. Writing updates is refused under ``CI=true``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replay.results import ScenarioResult
from replay.store import ci_mode


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness-replay", "golden-trace replay")
    group.addoption(
        "--golden-update",
        action="store_true",
        default=False,
        help="write trace.json.new for mismatching goldens (refused under CI=true)",
    )
    group.addoption(
        "--golden-repeat",
        type=int,
        default=1,
        metavar="N",
        help="replay each golden N times and report nondeterminism",
    )
    group.addoption(
        "--golden-skip-signatures",
        action="store_true",
        default=False,
        help="do not verify audit-golden signatures (local debugging only)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--golden-update") and ci_mode():
        raise pytest.UsageError("--golden-update is refused under CI=true: CI never writes goldens")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name == "scenario.yaml" and file_path.parent.parent.name == "goldens":
        return GoldenFile.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    """pytest-recording's configuration: the project's scrubbing and request matcher."""
    from replay.vcr_setup import vcr_config as project_vcr_config

    return project_vcr_config()


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """Register the canonical-request matcher that ``vcr_config`` names."""
    from replay.vcr_setup import BODY_MATCHER, harness_request_matcher

    vcr.register_matcher(BODY_MATCHER, harness_request_matcher)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Unit tier: no network but loopback (pytest-recording's ``block_network``)."""
    from replay.vcr_setup import LOOPBACK_HOSTS

    if not config.pluginmanager.hasplugin("recording"):
        return
    for item in items:
        if item.get_closest_marker("tier0") and not item.get_closest_marker("block_network"):
            item.add_marker(pytest.mark.block_network(allowed_hosts=list(LOOPBACK_HOSTS)))


@pytest.fixture
def golden_snapshot(request: pytest.FixtureRequest) -> Any:
    """syrupy's ``snapshot``, stored as canonical JSON under ``goldens/_snapshots/``."""
    try:
        from replay.snapshots import GoldenJSONExtension
    except ImportError as exc:  # syrupy is the `pytest` extra; say so instead of "fixture not found"
        raise pytest.UsageError(str(exc)) from None
    return request.getfixturevalue("snapshot").use_extension(GoldenJSONExtension)


class GoldenFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        item = GoldenItem.from_parent(self, name=self.path.parent.name)
        item.add_marker(pytest.mark.tier1)
        yield item


class GoldenMismatch(Exception):
    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.name)
        self.result = result


class GoldenItem(pytest.Item):
    def runtest(self) -> None:
        from replay.gate import check_scenario
        from replay.store import GoldenStore

        store = GoldenStore(self.path.parent.parent.parent)
        update = bool(self.config.getoption("--golden-update"))
        with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
            result = check_scenario(
                store,
                self.name,
                repeat=int(self.config.getoption("--golden-repeat")),
                ci=ci_mode() or not update,
                workroot=Path(tmp),
                verify_signatures=not self.config.getoption("--golden-skip-signatures"),
            )
        if result.status.failed:
            raise GoldenMismatch(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, GoldenMismatch):
            from replay.report import render_text

            return render_text([excinfo.value.result])
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"golden: {self.name}"
