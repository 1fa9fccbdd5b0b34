"""The PR gate: replay every golden offline, diff, verify signatures, find strays and nondeterminism."""

from __future__ import annotations

import functools
import json
import multiprocessing
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
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
        parsed = json.loads(golden)
    except ValueError as exc:
        raise FormatVersionError(
            f"scenario {name!r}: {store.display(store.paths(name).trace)} is not valid JSON ({exc}); "
            f"restore it from git or re-record with `harness-replay record {name}`"
        ) from None
    version = parsed.get("format_version") if isinstance(parsed, dict) else None
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
    store: GoldenStore,
    name: str,
    *,
    repeat: int,
    ci: bool,
    workroot: Path,
    verify_signatures: bool,
    allow_demo_key: bool = True,
) -> ScenarioResult:
    """Replay one golden and diff it (signatures first, when asked)."""
    return _check_scenario(
        store,
        name,
        repeat=repeat,
        ci=ci,
        workroot=workroot,
        verify_signatures=verify_signatures,
        allow_demo_key=allow_demo_key,
    )[0]


def _check_scenario(
    store: GoldenStore,
    name: str,
    *,
    repeat: int,
    ci: bool,
    workroot: Path,
    verify_signatures: bool,
    allow_demo_key: bool,
) -> tuple[ScenarioResult, tuple[str, ...]]:
    """The verdict and the cassette interactions the replay never used."""
    try:
        golden = _golden_bytes(store, name)
        load_scenario(store.paths(name).scenario)  # a broken input file is named before anything else
        if verify_signatures:
            from replay.trust import verify_scenario

            verification = verify_scenario(store, name, allow_demo_key=allow_demo_key, bind_inputs=False)
            if not verification.ok:
                return (
                    ScenarioResult(
                        name,
                        ScenarioStatus.ERROR,
                        message="signature check failed: " + "; ".join(verification.problems),
                    ),
                    (),
                )
        first = replay_once(store, name, workroot=workroot)
        if repeat > 1:
            others = [replay_once(store, name, workroot=workroot).trace for _ in range(repeat - 1)]
            wobble = find_nondeterminism([first.trace, *others])
            if not wobble.equal:
                return (
                    ScenarioResult(
                        name,
                        ScenarioStatus.NONDETERMINISTIC,
                        diff=wobble,
                        message=f"{repeat} replays disagree",
                    ),
                    (),
                )
        diff = _with_wire_leaks(diff_trace_bytes(golden, first.trace_bytes), first, name)
    except ReplayError as exc:
        return ScenarioResult(name, ScenarioStatus.ERROR, message=str(exc)), ()
    return _verdict(
        store,
        name,
        first,
        diff,
        ci=ci,
        verify_signatures=verify_signatures,
        allow_demo_key=allow_demo_key,
    )


def _verdict(
    store: GoldenStore,
    name: str,
    first: ScenarioRun,
    diff: TraceDiff,
    *,
    ci: bool,
    verify_signatures: bool,
    allow_demo_key: bool,
) -> tuple[ScenarioResult, tuple[str, ...]]:
    """Judge a finished replay: misses, equality, approved inputs; write ``.new`` on a diff."""
    miss_note = ""
    if first.cassette_misses:
        miss_note = (
            f"{len(first.cassette_misses)} provider request(s) were not in the cassette; "
            f"first: {first.cassette_misses[0]}"
        )
        if diff.equal:
            return ScenarioResult(name, ScenarioStatus.ERROR, message=miss_note), ()
    if diff.equal:
        if verify_signatures:
            from replay.trust import verify_scenario

            bound = verify_scenario(store, name, allow_demo_key=allow_demo_key)
            if not bound.ok:
                message = (
                    "the replay matches but an approved input changed: "
                    + "; ".join(bound.problems)
                    + f"; review and approve it with `harness-replay approve {name}`"
                )
                return ScenarioResult(name, ScenarioStatus.ERROR, message=message), ()
        return ScenarioResult(name, ScenarioStatus.PASSED, diff=TraceDiff()), first.unused_interactions
    new_path = None
    if not ci:
        new_path = store.display(store.write_new(name, first.trace_bytes, ci=False))
    notes = [n for n in (miss_note, "" if new_path else "CI=true: no .new file written") if n]
    return (
        ScenarioResult(
            name, ScenarioStatus.REGRESSED, diff=diff, new_trace_path=new_path, message="\n".join(notes)
        ),
        (),
    )


def check(
    store: GoldenStore,
    names: Sequence[str] = (),
    *,
    repeat: int = 1,
    ci: bool = False,
    unreferenced: Unreferenced | None = None,
    verify_signatures: bool = True,
    allow_demo_key: bool = True,
    on_scenario: Callable[[str], None] | None = None,
    on_start: Callable[[int, int, str], None] | None = None,
    jobs: int = 1,
) -> CheckOutcome:
    """Replay ``names`` (default: every scenario) and look for strays around them.

    Strays (unreferenced files, pending ``.new`` updates) fail the run unless ``unreferenced``
    is ``warn`` or ``delete``; under CI a pending update always fails. Recorded interactions a
    replay never used are a warning, and fail the run only with an explicit
    ``unreferenced=reject`` (syrupy's unused snapshots). With ``names`` only the strays of
    those scenarios are looked at. ``on_start(index, total, name)`` is called before each
    scenario and ``on_scenario(name)`` after it (progress displays). ``jobs`` > 1 replays
    scenarios in that many processes (each scenario already runs in its own database and
    folder); results keep the order of ``names``.
    """
    if jobs < 1:
        raise ReplayError(f"jobs must be at least 1, got {jobs}")
    known = store.scenario_names()
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise GoldenMissing(f"no scenario named {', '.join(unknown)} (known: {', '.join(known) or 'none'})")
    selected = list(names) or known
    results: list[ScenarioResult] = []
    unused: dict[str, tuple[str, ...]] = {}
    with tempfile.TemporaryDirectory(prefix="harness-replay-") as tmp:
        one = functools.partial(
            _check_scenario,
            store,
            repeat=repeat,
            ci=ci,
            workroot=Path(tmp),
            verify_signatures=verify_signatures,
            allow_demo_key=allow_demo_key,
        )
        if jobs == 1 or len(selected) < 2:
            outcomes = _in_order(one, selected, on_start=on_start, on_scenario=on_scenario)
        else:
            # spawn: a fresh interpreter per worker, never a fork of a process holding threads.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(jobs, len(selected)), mp_context=context) as pool:
                outcomes = []
                for name, outcome in zip(selected, pool.map(one, selected), strict=True):
                    if on_scenario is not None:
                        on_scenario(name)
                    outcomes.append(outcome)
        for name, (result, never_played) in zip(selected, outcomes, strict=True):
            results.append(result)
            if never_played:
                unused[name] = never_played
    mode = unreferenced or Unreferenced.REJECT
    stray_paths = store.unreferenced(names or None)
    strays = [store.display(p) for p in stray_paths]
    failed = {r.name for r in results if r.status.failed}
    pending = [n for n in store.pending() if n in set(selected) and n not in failed]
    problems, warnings = _hygiene(
        mode,
        explicit_reject=unreferenced is Unreferenced.REJECT,
        ci=ci,
        strays=[f"unreferenced file {s}" for s in strays],
        pending=[f"pending update for {n} (run `harness-replay review`)" for n in pending],
        unused=[
            f"cassettes/{name}.yaml has {len(items)} recorded interaction(s) that replay never used "
            f"({', '.join(items)}); re-record with `harness-replay record {name}`"
            for name, items in sorted(unused.items())
        ],
    )
    if mode is Unreferenced.DELETE:
        for path in stray_paths:
            path.unlink() if path.is_file() else None
        warnings = [f"deleted {s}" for s in strays] + warnings
    if problems:
        results.append(ScenarioResult("(goldens)", ScenarioStatus.ERROR, message="; ".join(problems)))
    return CheckOutcome(results=tuple(results), warnings=tuple(warnings))


def _in_order(
    one: Callable[[str], tuple[ScenarioResult, tuple[str, ...]]],
    selected: Sequence[str],
    *,
    on_start: Callable[[int, int, str], None] | None,
    on_scenario: Callable[[str], None] | None,
) -> list[tuple[ScenarioResult, tuple[str, ...]]]:
    """Replay ``selected`` one after the other in this process, telling the progress display."""
    outcomes = []
    for index, name in enumerate(selected, start=1):
        if on_start is not None:
            on_start(index, len(selected), name)
        outcomes.append(one(name))
        if on_scenario is not None:
            on_scenario(name)
    return outcomes


def _hygiene(
    mode: Unreferenced,
    *,
    explicit_reject: bool,
    ci: bool,
    strays: list[str],
    pending: list[str],
    unused: list[str],
) -> tuple[list[str], list[str]]:
    """(problems that fail the run, warnings) for strays, pending updates and unused interactions."""
    problems: list[str] = []
    warnings: list[str] = []
    if mode is Unreferenced.REJECT:
        problems += strays
    elif mode is Unreferenced.WARN:
        warnings += strays
    (problems if mode is Unreferenced.REJECT or ci else warnings).extend(pending)
    (problems if explicit_reject else warnings).extend(unused)
    return problems, warnings


def record(
    store: GoldenStore, name: str, *, workroot: Path, endpoint: tuple[str, str] | None = None
) -> ScenarioRun:
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
            endpoint=endpoint,
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
