"""The record and accept halves of the review flow, for ``harness-replay`` (kept out of cli.py)."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from replay.errors import ReplayError
from replay.store import GoldenStore, ci_mode


def freshness_hook(store: GoldenStore) -> Callable[[str], tuple[bool, str]]:
    """``before_accept`` for review/accept: re-record a stale cassette, show it, then decide."""
    from replay.rerecord import ensure_fresh

    def check(name: str) -> tuple[bool, str]:
        with tempfile.TemporaryDirectory(prefix="harness-accept-") as tmp:
            fresh = ensure_fresh(store, name, workroot=Path(tmp))
        return fresh.proceed, fresh.report

    return check


def record_command(
    store: GoldenStore,
    names: Sequence[str],
    *,
    all_: bool,
    reason: str,
    approver: str | None,
    accept_now: bool,
    quiet: bool,
    mode: str = "all",
    endpoint: tuple[str, str] | None = None,
) -> None:
    """Record each scenario into ``.new`` files, print what changed, accept when asked."""
    from replay._cli_keys import default_approver
    from replay.progress import progress
    from replay.rerecord import RecordMode, record_pending
    from replay.review import accept
    from replay.signing import signer_from_env, utc_now

    if ci_mode():
        raise ReplayError("CI=true: recording writes goldens, which CI never does")
    selected = list(names) or (store.scenario_names() if all_ else [])
    if not selected:
        raise click.UsageError("name at least one scenario, or pass --all")
    # With --accept the key is needed: fail on a missing one before any recording, not after.
    signer = signer_from_env() if accept_now else None
    who = default_approver(approver, store)
    click.echo(f"recording against {endpoint[0] if endpoint else 'the provider simulator (loopback)'}")
    with (
        tempfile.TemporaryDirectory(prefix="harness-record-") as tmp,
        progress(len(selected), "recording", quiet=quiet) as advance,
    ):
        finals = {}
        for name in selected:
            result = record_pending(store, name, workroot=Path(tmp), mode=RecordMode(mode), endpoint=endpoint)
            advance(name)
            finals[name] = final_states(result.trace)
            click.echo(
                f"recorded {name}: {len(result.trace['prompts'])} model call(s), "
                f"{len(result.audit)} audit entries, final {finals[name]}"
            )
    pending = _show_recorded(store, selected)
    unchanged = len(selected) - len(pending)
    if not accept_now:
        click.echo(f"record: {len(pending)} proposed for review, {unchanged} unchanged")
        if pending:
            click.echo("review the pending updates with `harness-replay review` (or accept NAME)")
        return
    assert signer is not None
    for name in selected:
        if name in pending:
            entry = accept(store, name, signer=signer, approver=who, reason=reason, at=utc_now())
            click.echo(
                f"accepted {name}: final {finals[name]}; signed by {who} (approval #{entry['counter']})"
            )
    click.echo(f"record: {len(pending)} re-recorded and signed, {unchanged} unchanged")


def final_states(trace: Mapping[str, Any]) -> str:
    """A trace's final run states, readable: ``run_1: REJECTED, run_2: APPROVED`` (or ``no runs``)."""
    runs = trace.get("final", {}).get("runs", {})
    return ", ".join(f"{run}: {state}" for run, state in sorted(runs.items())) or "no runs"


def _show_recorded(store: GoldenStore, selected: Sequence[str]) -> set[str]:
    """Drop no-op recordings, print each proposed update's diff; return the pending names."""
    from replay.review import _render, list_pending

    for name in selected:
        paths = store.paths(name)
        same = paths.trace_new.exists() and paths.trace_new.read_bytes() == store.read_trace_bytes(name)
        if same and not paths.cassette_new.exists():
            paths.trace_new.unlink()
    pending = {p.name: p for p in list_pending(store) if p.name in selected}
    for name in selected:
        update = pending.get(name)
        if update is None:
            click.echo(f"  {name}: unchanged (same trace and cassette; nothing to review or re-sign)")
            continue
        what = "new golden" if update.is_new_golden else f"{len(update.diff.differences)} difference(s)"
        cassette = ", cassette changed" if update.has_cassette_update else ""
        click.echo(f"  {name}: {what}{cassette}")
        if update.has_trace_update and not update.diff.equal:
            click.echo(_render(update, color=sys.stdout.isatty()))
    return set(pending)
