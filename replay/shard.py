"""Replay beyond one machine: a deterministic shard of the goldens, and one verdict from many reports.

``harness-replay check --shard K/N`` replays the K-th of N disjoint shards, so a CI matrix of
N runners replays 1/N each. The partition depends only on the committed files: scenarios are
weighted by what their replay costs (the recorded cassette's size, which tracks the number and
size of recorded provider interactions, plus the scenario file's), sorted heaviest first
(name breaks ties) and dealt greedily to the lightest shard, so every runner gets a similar
load and every runner computes the same partition. ``merge-reports`` combines the runners'
``--json`` reports into one JSON/JUnit/markdown report and one exit code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from replay.errors import ReplayError
from replay.results import ScenarioResult, ScenarioStatus
from replay.store import GoldenStore

_SHARD = re.compile(r"([1-9][0-9]*)/([1-9][0-9]*)")


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N; anything else is a usage error that says the form."""
    match = _SHARD.fullmatch(text.strip())
    if not match or int(match.group(1)) > int(match.group(2)):
        raise ReplayError(f"--shard must be K/N with 1 <= K <= N (e.g. 2/4), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def replay_weight(store: GoldenStore, name: str) -> int:
    """The cost proxy of replaying ``name``: bytes of its recorded cassette and scenario file."""
    paths = store.paths(name)
    return sum(p.stat().st_size for p in (paths.cassette, paths.scenario) if p.exists())


def shard_names(store: GoldenStore, names: Sequence[str], *, index: int, count: int) -> list[str]:
    """The scenarios of shard ``index`` (1-based) of ``count``, in name order."""
    loads = [0] * count
    members: list[list[str]] = [[] for _ in range(count)]
    weighted = sorted(((replay_weight(store, n), n) for n in names), key=lambda wn: (-wn[0], wn[1]))
    for weight, name in weighted:
        lightest = min(range(count), key=lambda i: (loads[i], i))
        loads[lightest] += weight
        members[lightest].append(name)
    return sorted(members[index - 1])


def merge_reports(paths: Sequence[Path]) -> list[ScenarioResult]:
    """Every scenario result of the given ``check --json`` reports; refuses overlaps and bad files."""
    results: list[ScenarioResult] = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            scenarios = document["scenarios"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReplayError(
                f"{path}: not a `harness-replay check --json` report ({type(exc).__name__}: {exc}); "
                "pass the files the shards wrote with --json"
            ) from None
        for data in scenarios:
            result = ScenarioResult.from_json(data)
            if result.name in seen and result.name != "(goldens)":
                raise ReplayError(
                    f"scenario {result.name!r} is in both {seen[result.name]} and {path}: the reports "
                    "overlap (were the shards run with the same K/N?)"
                )
            seen[result.name] = path
            results.append(result)
    return sorted(results, key=lambda r: r.name)


def merged_ok(results: Sequence[ScenarioResult]) -> bool:
    """One verdict: no scenario failed (and at least one ran)."""
    return (
        bool(results)
        and not any(r.status.failed for r in results)
        and all(isinstance(r.status, ScenarioStatus) for r in results)
    )
