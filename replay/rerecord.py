"""No stale cassette: record into pending ``.new`` files, and refresh a pending update before it is signed.

``record_pending`` records a scenario against the simulator (or ``OPENAI_BASE_URL``) into
``trace.json.new`` and ``cassettes/NAME.yaml.new``; nothing reaches the goldens until review
accepts it. ``ensure_fresh`` runs before an accept: it replays the pending trace offline
against the cassette it would be signed with; when the provider traffic changed (a cassette
miss) it re-records, shows the trace and cassette diff, and lets the accept go ahead only
when the re-recorded trace is the one the reviewer saw.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import yaml

from replay.diff import diff_trace_bytes
from replay.engine import ScenarioRun, run_scenario
from replay.errors import ReplayError
from replay.results import ScenarioResult, ScenarioStatus
from replay.scenario import load_scenario
from replay.store import GoldenStore, atomic_write_bytes

__all__ = ["Freshness", "RecordMode", "cassette_diff", "ensure_fresh", "record_pending"]

_MAX_DIFF_LINES: Final = 200
_EMPTY_TRACE: Final = b"{}\n"


@dataclass(frozen=True)
class Freshness:
    """Whether a pending update may be signed now, and what the reviewer should see first."""

    proceed: bool
    rerecorded: bool
    report: str


class RecordMode(StrEnum):
    """vcrpy's record modes, as ``harness-replay record --mode`` offers them."""

    ONCE = "once"  # record only a scenario without a cassette; otherwise replay it (misses fail)
    NEW_EPISODES = "new_episodes"  # keep the recorded answers, record only new requests
    ALL = "all"  # re-record every request (the default)


def record_pending(
    store: GoldenStore,
    name: str,
    *,
    workroot: Path,
    mode: RecordMode = RecordMode.ALL,
    endpoint: tuple[str, str] | None = None,
) -> ScenarioRun:
    """Record ``name`` into ``trace.json.new`` and the cassette's ``.new`` (for review), per ``mode``."""
    from vcr.record_mode import RecordMode as VcrMode

    paths = store.paths(name)
    scenario = load_scenario(paths.scenario)
    recording = paths.cassette.with_name(paths.cassette.name + ".recording")
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.unlink(missing_ok=True)
    has_cassette = paths.cassette.exists()
    replay_only = mode is RecordMode.ONCE and has_cassette
    vcr_mode = None
    if mode is RecordMode.NEW_EPISODES and has_cassette:
        shutil.copyfile(paths.cassette, recording)
        vcr_mode = VcrMode.NEW_EPISODES
    if replay_only:
        shutil.copyfile(paths.cassette, recording)
    try:
        result = run_scenario(
            scenario,
            name=name,
            source=store.display(paths.scenario),
            cassette=recording,
            record=not replay_only,
            workdir=Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workroot)),
            record_mode=vcr_mode,
            endpoint=endpoint,
        )
        if replay_only and result.cassette_misses:
            raise ReplayError(
                f"scenario {name!r}: --mode once keeps an existing cassette, and it has no answer for "
                f"{len(result.cassette_misses)} request(s); use --mode new_episodes or --mode all"
            )
        if not recording.exists():  # no provider call at all: an empty, versioned cassette
            from replay.cassette import empty_cassette_text

            recording.write_text(empty_cassette_text(), encoding="utf-8")
        if result.unexpected_statuses:
            raise ReplayError(
                f"scenario {name!r} did not behave as its steps expect, not recording: "
                + "; ".join(result.unexpected_statuses)
            )
        atomic_write_bytes(paths.trace_new, result.trace_bytes)
        if paths.cassette.exists() and paths.cassette.read_bytes() == recording.read_bytes():
            paths.cassette_new.unlink(missing_ok=True)  # same traffic: nothing to review there
        else:
            os.replace(recording, paths.cassette_new)
    finally:
        recording.unlink(missing_ok=True)
    return result


def ensure_fresh(store: GoldenStore, name: str, *, workroot: Path) -> Freshness:
    """Make sure the cassette that would be promoted with ``name``'s pending trace produces it."""
    paths = store.paths(name)
    if not paths.trace_new.exists():
        return Freshness(proceed=True, rerecorded=False, report="")
    reviewed = paths.trace_new.read_bytes()
    cassette = paths.cassette_new if paths.cassette_new.exists() else paths.cassette
    stale = "no cassette"
    if cassette.exists():
        try:
            run = run_scenario(
                load_scenario(paths.scenario),
                name=name,
                source=store.display(paths.scenario),
                cassette=cassette,
                record=False,
                workdir=Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workroot)),
            )
        except ReplayError as exc:
            stale = str(exc).splitlines()[0]
        else:
            if not run.cassette_misses and run.trace_bytes == reviewed:
                return Freshness(proceed=True, rerecorded=False, report="")
            stale = (
                f"{len(run.cassette_misses)} provider request(s) not in the cassette"
                if run.cassette_misses
                else "trace.json.new is not what the scenario replays to: edited by hand?"
            )
    old_cassette = paths.cassette.read_text(encoding="utf-8") if paths.cassette.exists() else ""
    record_pending(store, name, workroot=workroot)
    now = paths.trace_new.read_bytes()
    new_cassette = (
        paths.cassette_new.read_text(encoding="utf-8") if paths.cassette_new.exists() else old_cassette
    )
    lines = [
        f"{name}: the pending update does not match its cassette ({stale}); re-recorded it against "
        "the provider simulator"
    ]
    golden = store.read_trace_bytes(name) or _EMPTY_TRACE
    from replay.report import render_text

    diff = diff_trace_bytes(golden, now)
    if not diff.equal:
        block = render_text([ScenarioResult(name, ScenarioStatus.UPDATED, diff=diff)], color=False)
        lines += ["trace diff (golden -> re-recorded):", block.split("\n", 2)[-1].rstrip("\n")]
    lines += [
        "cassette diff (golden -> re-recorded):",
        cassette_diff(old_cassette, new_cassette) or "  (none)",
    ]
    proceed = now == reviewed
    if not proceed:
        lines.append(
            f"the re-recorded trace differs from the trace.json.new you reviewed; not signing: review "
            f"{name} again (`harness-replay review`)"
        )
    return Freshness(proceed=proceed, rerecorded=True, report="\n".join(lines))


def cassette_diff(old: str, new: str) -> str:
    """A unified diff of two cassettes' interactions (request and response bodies pretty-printed)."""
    diff = list(
        difflib.unified_diff(
            _readable(old),
            _readable(new),
            "cassette (golden)",
            "cassette (re-recorded)",
            lineterm="",
            n=2,
        )
    )
    if len(diff) > _MAX_DIFF_LINES:
        diff = [*diff[:_MAX_DIFF_LINES], f"... {len(diff) - _MAX_DIFF_LINES} more line(s)"]
    return "\n".join(diff)


def _readable(text: str) -> list[str]:
    if not text.strip():
        return []
    data = yaml.safe_load(text) or {}
    lines: list[str] = []
    for index, interaction in enumerate(data.get("interactions", [])):
        request, response = interaction.get("request", {}), interaction.get("response", {})
        lines.append(f"#{index} {request.get('method')} {request.get('uri')}")
        lines += ["  request: " + line for line in _pretty(request.get("body")).splitlines()]
        body = response.get("body", {}).get("string", "")
        lines.append(f"  response {response.get('status', {}).get('code')}:")
        lines += ["    " + line for line in _pretty(body).splitlines()]
    return lines


def _pretty(body: Any) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
    except ValueError:
        return text
