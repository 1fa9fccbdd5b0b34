"""Seams that cannot lie: code reading the wall clock or global randomness directly fails replay.

Record and replay used to freeze the wall clock at the scenario's start and leave global
randomness alone, so a ``datetime.now()`` slipped into the audit path agreed with the golden by
accident. The engine now freezes the wall clock ten years away from the scenario clock the
harness seam reports, and reseeds global ``random`` per run: the bypass shows up at its path.
"""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from replay import engine
from replay.gate import check
from replay.results import ScenarioStatus
from replay.store import GoldenStore

pytestmark = [pytest.mark.tier1]

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "happy_path_with_approval"


@pytest.fixture
def project(tmp_path: Path) -> GoldenStore:
    for folder in ("goldens", "cassettes"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return GoldenStore(tmp_path)


def _audit_reads_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The regression: the audit path stamps entries with ``datetime.now()``, not ``rt.clock``."""
    import harness.audit as audit

    real_iso = audit.iso
    monkeypatch.setattr(audit, "iso", lambda _moment: real_iso(datetime.now(UTC)))


def test_a_wall_clock_read_in_the_audit_path_is_a_difference_at_its_path(
    project: GoldenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _audit_reads_the_wall_clock(monkeypatch)
    result = check(project, [SCENARIO], ci=True).results[0]
    assert result.status is ScenarioStatus.REGRESSED, result.message
    assert result.diff is not None
    stamped = [d for d in result.diff.differences if d.section == "audit" and d.path.endswith(".at")]
    assert stamped, [d.path for d in result.diff.differences]
    # The poisoned wall clock is ten years after the scenario's start: the diff says so.
    assert str(stamped[0].old).startswith("2026-") and str(stamped[0].new).startswith("2036-")


def test_without_the_poison_the_same_bypass_would_agree_with_the_golden(
    project: GoldenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: an honest freeze at the scenario time hides the bug, which is why we poison."""
    _audit_reads_the_wall_clock(monkeypatch)
    monkeypatch.setattr(engine, "WALL_CLOCK_POISON", timedelta(0))
    result = check(project, [SCENARIO], ci=True).results[0]
    assert result.status is ScenarioStatus.PASSED, result.message


def test_global_random_differs_from_the_seam_on_every_run(
    project: GoldenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids drawn from global ``random`` instead of the seeded ``IdSource`` never replay equal."""
    from harness import ids

    monkeypatch.setattr(ids.IdSource, "new", lambda self, prefix: f"{prefix}_{random.getrandbits(64):016x}")
    result = check(project, [SCENARIO], ci=True).results[0]
    assert result.status is ScenarioStatus.REGRESSED, result.message


def test_the_seams_get_the_scenario_time_while_the_wall_clock_is_poisoned() -> None:
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    before = random.getstate()
    with engine.poisoned_seams(start) as (clock, frozen):
        assert clock.now() == start
        assert datetime.now(UTC) == start + engine.WALL_CLOCK_POISON
        clock.advance(1)
        frozen.tick(1)
        assert clock.now() == start + timedelta(seconds=1)
        assert random.getstate() != before
    assert random.getstate() == before
