"""`check --shard K/N` splits the goldens deterministically and evenly; merge-reports gives one verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from replay.errors import ReplayError
from replay.results import ScenarioResult, ScenarioStatus
from replay.shard import merge_reports, merged_ok, parse_shard, replay_weight, shard_names
from replay.store import GoldenStore

pytestmark = [pytest.mark.tier1]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "a/b", "2", "1/2/3", "-1/2"])
def test_a_bad_shard_says_the_form(text: str) -> None:
    with pytest.raises(ReplayError, match="K/N"):
        parse_shard(text)


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_are_disjoint_complete_deterministic_and_balanced(count: int) -> None:
    store = GoldenStore(ROOT)
    names = store.scenario_names()
    shards = [shard_names(store, names, index=k, count=count) for k in range(1, count + 1)]
    assert sorted(n for shard in shards for n in shard) == sorted(names)
    assert shards == [
        shard_names(store, list(reversed(names)), index=k, count=count) for k in range(1, count + 1)
    ]
    loads = [sum(replay_weight(store, n) for n in shard) for shard in shards]
    heaviest = max(replay_weight(store, n) for n in names)
    # Greedy to the lightest shard: no shard exceeds another by more than one scenario's weight.
    assert max(loads) - min(loads) <= heaviest


def _report(path: Path, *results: ScenarioResult) -> Path:
    path.write_text(json.dumps({"scenarios": [r.to_json() for r in results]}), encoding="utf-8")
    return path


def test_merge_gives_one_verdict_and_refuses_overlaps(tmp_path: Path) -> None:
    ok_a = _report(tmp_path / "a.json", ScenarioResult("alpha", ScenarioStatus.PASSED))
    ok_b = _report(tmp_path / "b.json", ScenarioResult("beta", ScenarioStatus.PASSED))
    bad = _report(tmp_path / "c.json", ScenarioResult("gamma", ScenarioStatus.REGRESSED, message="x"))
    assert merged_ok(merge_reports([ok_a, ok_b]))
    merged = merge_reports([ok_a, bad, ok_b])
    assert [r.name for r in merged] == ["alpha", "beta", "gamma"] and not merged_ok(merged)
    with pytest.raises(ReplayError, match="overlap"):
        merge_reports([ok_a, ok_a])
    junk = tmp_path / "junk.json"
    junk.write_text("{}", encoding="utf-8")
    with pytest.raises(ReplayError, match="check --json"):
        merge_reports([junk])


def test_merge_reports_cli_exit_codes_and_junit(tmp_path: Path) -> None:
    ok_a = _report(tmp_path / "a.json", ScenarioResult("alpha", ScenarioStatus.PASSED))
    bad = _report(tmp_path / "b.json", ScenarioResult("gamma", ScenarioStatus.ERROR, message="cassette miss"))
    cli = str(BIN / "harness-replay")
    passed = subprocess.run(
        [cli, "merge-reports", str(ok_a)], check=False, capture_output=True, text=True, timeout=120
    )
    assert passed.returncode == 0, passed.stderr
    junit = tmp_path / "merged.xml"
    failed = subprocess.run(
        [cli, "merge-reports", str(ok_a), str(bad), "--junit-xml", str(junit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1
    assert "gamma" in junit.read_text(encoding="utf-8") and "alpha" in junit.read_text(encoding="utf-8")


def test_check_in_two_processes_gives_the_same_results_in_order() -> None:
    from replay.gate import check

    store = GoldenStore(ROOT)
    names = store.scenario_names()[:2]
    serial = check(store, names, verify_signatures=False)
    parallel = check(store, names, verify_signatures=False, jobs=2)
    assert [(r.name, r.status) for r in parallel.results] == [(r.name, r.status) for r in serial.results]
    assert [r.name for r in parallel.results] == list(names)
    with pytest.raises(ReplayError, match="jobs must be at least 1"):
        check(store, names, jobs=0)
