"""The PR gate: replay every golden offline, diff, verify signatures, find strays and nondeterminism."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from replay.diff import diff_trace_bytes, find_nondeterminism
from replay.engine import TRACE_FORMAT_VERSION, ScenarioRun, run_scenario
from replay.errors import FormatVersionError, GoldenMissing, ReplayError
from replay.results import DiffClass, Difference, ScenarioResult, ScenarioStatus, TraceDiff
from replay.scenario import load_scenario
from replay.store import GoldenStore


class Unreferenced(StrEnum):
    REJECT = "reject"
    WARN = "warn"
    DELETE = "delete"


@dataclass(frozen=True)
class CheckOutcome:
    results: tuple[ScenarioResult, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not any(r.status.failed for r in self.results)


def replay_once(store: GoldenStore, name: str, *, workroot: Path) -> ScenarioRun:
    paths = store.paths(name)
    scenario = load_scenario(paths.scenario)
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workroot))
    return run_scenario(
        scenario,
        name=name,
        source=store.display(paths.scenario),
        cassette=paths.cassette,
        record=False,
        workdir=workdir,
    )


def _golden_bytes(store: GoldenStore, name: str) -> bytes:
    golden = store.read_trace_bytes(name)
    if golden is None:
        raise GoldenMissing(
            f"scenario {name!r} has no trace.json; record it with `harness-replay record {name}`"
        )
    try:
        version = json.loads(golden).get("format_version")
    except ValueError:
        version = None
    if version != TRACE_FORMAT_VERSION:
        raise FormatVersionError(
            f"scenario {name!r}: trace.json has format_version {version!r}, this engine writes "
            f"{TRACE_FORMAT_VERSION}; re-record with `harness-replay record {name}`"
        )
    return golden


def _with_wire_leaks(diff: TraceDiff, run: ScenarioRun, name: str) -> TraceDiff:
    """A secret on the wire is a regression even when the (redacted) trace is byte-identical."""
    leaks = tuple(
        Difference(
            section="redaction_leak",
            path=f"wire[{leak.call}]",
            change="added",
            klass=DiffClass.STRUCTURAL,
            old=None,
            new=leak.describe(name),
        )
        for leak in run.wire_leaks
    )
    return TraceDiff(leaks + diff.differences) if leaks else diff


def check_scenario(
    store: GoldenStore, name: str, *, repeat: int, ci: bool, workroot: Path, verify_signatures: bool
) -> ScenarioResult:
    try:
        golden = _golden_bytes(store, name)
        if verify_signatures:
            from replay.signing import load_trusted_keys, verify_golden

            verification = verify_golden(store, name, load_trusted_keys(store))
            if not verification.ok:
                return ScenarioResult(
                    name,
                    ScenarioStatus.ERROR,
                    message="signature check failed: " + "; ".join(verification.problems),
                )
        first = replay_once(store, name, workroot=workroot)
        if repeat > 1:
            others = [replay_once(store, name, workroot=workroot).trace for _ in range(repeat - 1)]
            wobble = find_nondeterminism([first.trace, *others])
            if not wobble.equal:
                return ScenarioResult(
                    name, ScenarioStatus.NONDETERMINISTIC, diff=wobble, message=f"{repeat} replays disagree"
                )
        diff = _with_wire_leaks(diff_trace_bytes(golden, first.trace_bytes), first, name)
    except ReplayError as exc:
        return ScenarioResult(name, ScenarioStatus.ERROR, message=str(exc))
    miss_note = ""
    if first.cassette_misses:
        miss_note = (
            f"{len(first.cassette_misses)} provider request(s) were not in the cassette; "
            f"first: {first.cassette_misses[0]}"
        )
        if diff.equal:
            return ScenarioResult(name, ScenarioStatus.ERROR, message=miss_note)
    if diff.equal:
        return ScenarioResult(name, ScenarioStatus.PASSED, diff=TraceDiff())
    new_path = None
    if not ci:
        new_path = store.display(store.write_new(name, first.trace_bytes, ci=False))
    notes = [n for n in (miss_note, "" if new_path else "CI=true: no .new file written") if n]
    return ScenarioResult(
        name, ScenarioStatus.REGRESSED, diff=diff, new_trace_path=new_path, message="\n".join(notes)
    )


def check(
    store: GoldenStore,
    names: Sequence[str] = (),
    *,
    repeat: int = 1,
    ci: bool = False,
    unreferenced: Unreferenced = Unreferenced.REJECT,
    verify_signatures: bool = True,
) -> CheckOutcome:
    """Replay ``names`` (default: every scenario); strays and pending updates per ``unreferenced``."""
    known = store.scenario_names()
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise GoldenMissing(f"no scenario named {', '.join(unknown)} (known: {', '.join(known) or 'none'})")
    selected = list(names) or known
    with tempfile.TemporaryDirectory(prefix="harness-replay-") as tmp:
        results = [
            check_scenario(
                store, name, repeat=repeat, ci=ci, workroot=Path(tmp), verify_signatures=verify_signatures
            )
            for name in selected
        ]
    warnings: list[str] = []
    if not names:
        strays = [store.display(p) for p in store.unreferenced()]
        pending = [n for n in store.pending() if n not in {r.name for r in results if r.status.failed}]
        problems = [f"unreferenced file {s}" for s in strays] + [
            f"pending update for {n} (run `harness-replay review`)" for n in pending
        ]
        if unreferenced is Unreferenced.DELETE:
            for path in store.unreferenced():
                path.unlink() if path.is_file() else None
            warnings.extend(f"deleted {s}" for s in strays)
        elif unreferenced is Unreferenced.WARN:
            warnings.extend(problems)
        elif problems:
            results.append(ScenarioResult("(goldens)", ScenarioStatus.ERROR, message="; ".join(problems)))
    return CheckOutcome(results=tuple(results), warnings=tuple(warnings))


def record(store: GoldenStore, name: str, *, workroot: Path) -> ScenarioRun:
    """Record ``name`` afresh: new cassette, new trace.json and audit.jsonl (explicit update)."""
    paths = store.paths(name)
    scenario = load_scenario(paths.scenario)
    cassette_tmp = paths.cassette.with_name(paths.cassette.name + ".recording")
    cassette_tmp.parent.mkdir(parents=True, exist_ok=True)
    cassette_tmp.unlink(missing_ok=True)
    try:
        result = run_scenario(
            scenario,
            name=name,
            source=store.display(paths.scenario),
            cassette=cassette_tmp,
            record=True,
            workdir=Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workroot)),
        )
        if not cassette_tmp.exists():  # no provider call at all: an empty, versioned cassette
            from replay.cassette import empty_cassette_text

            cassette_tmp.write_text(empty_cassette_text(), encoding="utf-8")
        if result.wire_leaks:
            raise ReplayError(
                f"scenario {name!r} sent secrets to the provider, not recording: "
                + "; ".join(leak.describe(name) for leak in result.wire_leaks)
            )
        if result.unexpected_statuses:
            raise ReplayError(
                f"scenario {name!r} did not behave as its steps expect, not recording: "
                + "; ".join(result.unexpected_statuses)
            )
        store.write_golden(name, result.trace_bytes, result.audit, cassette_new=cassette_tmp)
    finally:
        cassette_tmp.unlink(missing_ok=True)
    return result
