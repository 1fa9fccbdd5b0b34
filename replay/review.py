"""Review pending golden updates the way ``cargo insta review`` does: see the diff, then
accept (promote, re-sign, record a signed approval), reject (discard) or skip each one."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TextIO

from harness.canonical import sha256_hex
from harness.integrity import Signer, verify_chain
from replay.diff import diff_trace_bytes
from replay.errors import FormatVersionError, GoldenMissing, ReplayError, SignatureError
from replay.report import render_text
from replay.results import ScenarioResult, ScenarioStatus, TraceDiff
from replay.signing import (
    DEFAULT_REASON,
    TRACE_FORMAT_VERSION,
    append_approval,
    sign_golden,
    utc_now,
)
from replay.store import GoldenStore

__all__ = [
    "CHOICES_PROMPT",
    "REASON_PROMPT",
    "PendingUpdate",
    "ReviewSummary",
    "accept",
    "interactive_review",
    "list_pending",
    "reject",
]

REASON_PROMPT: Final = f"reason [{DEFAULT_REASON}]: "
CHOICES_PROMPT: Final = "a accept, r reject, s skip, A accept all, R reject all, S skip all, q quit"
_EMPTY_TRACE: Final = b"{}\n"  # what a brand-new golden is compared against


@dataclass(frozen=True)
class PendingUpdate:
    """One scenario waiting for review: the trace diff and whether its cassette changed too."""

    name: str
    diff: TraceDiff
    has_cassette_update: bool
    has_trace_update: bool = True
    is_new_golden: bool = False  # no trace.json yet: everything in the diff is "added"
    error: str | None = None  # why no diff could be made (e.g. trace.json.new is not JSON)


@dataclass(frozen=True)
class ReviewSummary:
    """What a review session did."""

    accepted: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()  # accept raised; the update is still pending

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "accepted": list(self.accepted),
            "rejected": list(self.rejected),
            "skipped": list(self.skipped),
            "failed": list(self.failed),
        }


def list_pending(store: GoldenStore) -> list[PendingUpdate]:
    """Every pending update, sorted by scenario name, with its diff against the golden."""
    updates = []
    for name in store.pending():
        paths = store.paths(name)
        old = store.read_trace_bytes(name)
        has_trace = paths.trace_new.exists()
        diff, error = TraceDiff(), None
        if has_trace:
            try:
                diff = diff_trace_bytes(old or _EMPTY_TRACE, paths.trace_new.read_bytes())
            except ValueError as exc:  # a trace that is not JSON: show why, let review reject it
                error = str(exc)
        updates.append(
            PendingUpdate(
                name=name,
                diff=diff,
                has_cassette_update=paths.cassette_new.exists(),
                has_trace_update=has_trace,
                is_new_golden=old is None,
                error=error,
            )
        )
    return updates


def accept(
    store: GoldenStore,
    name: str,
    *,
    signer: Signer,
    approver: str,
    reason: str,
    at: str,
) -> dict[str, Any]:
    """Promote ``name``'s pending update, re-sign its audit golden, append a signed approval.

    The new trace is checked before anything moves (format version, audit chain), so a bad
    update leaves the golden untouched. Returns the approval entry.
    """
    paths = store.paths(name)
    if not any(path.exists() for path in paths.new_files):
        raise GoldenMissing(f"scenario {name!r} has no pending update to accept")
    if paths.trace_new.exists():
        _check_acceptable(store, name, paths.trace_new.read_bytes())
    old = store.read_trace_bytes(name)
    store.promote(name)
    sign_golden(store, name, signer=signer)
    return append_approval(
        store,
        name,
        signer=signer,
        approver=approver,
        reason=reason,
        old_trace_sha256=None if old is None else sha256_hex(old),
        at=at,
    )


def reject(store: GoldenStore, name: str) -> None:
    """Discard ``name``'s pending update (``trace.json.new`` and cassette ``.new``)."""
    if not store.discard(name):
        raise GoldenMissing(f"scenario {name!r} has no pending update to reject")


def interactive_review(
    store: GoldenStore,
    *,
    signer: Signer,
    approver: str,
    reason_prompt: str | None = REASON_PROMPT,
    input_fn: Callable[[str], str] = input,
    output: TextIO = sys.stdout,
    isatty: bool,
    at_fn: Callable[[], str] | None = None,
    default_reason: str = DEFAULT_REASON,
    before_accept: Callable[[str], tuple[bool, str]] | None = None,
) -> ReviewSummary:
    """Walk every pending update, show its diff and ask what to do with it.

    Answers are read one line at a time from ``input_fn``, so a script or pipe can drive it;
    end of input skips whatever is left. On accept the reason is asked with
    ``reason_prompt`` (empty answer: ``default_reason``); with ``reason_prompt=None`` it is
    not asked. ``isatty`` turns on colour. ``at_fn`` stamps approvals (default: now, UTC).
    ``before_accept(name)`` runs first on every accept (the stale-cassette re-record): it
    returns whether to go ahead and what to show; a refusal leaves the update pending.
    """
    clock = at_fn or utc_now
    session = _Session(input_fn=input_fn, output=output, echo=not isatty)
    pending = list_pending(store)
    if not pending:
        session.say("no pending golden updates")
        return ReviewSummary()
    accepted: list[str] = []
    rejected: list[str] = []
    skipped: list[str] = []
    failed: list[str] = []
    batch: str | None = None  # "a" or "r" once an "accept/reject all" answer was given
    batch_reason: str | None = None
    for index, update in enumerate(pending, start=1):
        session.say("")
        session.say(_header(update, index, len(pending)))
        if batch is None:
            session.say(_render(update, color=isatty))
            choice = session.choose()
            if choice in {"A", "R"}:
                batch = choice = choice.lower()
            elif choice in {"S", "q", "eof"}:
                skipped += [u.name for u in pending[index - 1 :]]
                session.say(f"skipped {len(pending) - index + 1} update(s); they stay pending")
                break
        else:
            choice = batch
        if choice == "s":
            skipped.append(update.name)
            session.say(f"skipped {update.name}")
        elif choice == "r":
            store.discard(update.name)
            rejected.append(update.name)
            session.say(f"rejected {update.name}: pending files discarded")
        else:
            if batch_reason is None:
                reason = session.reason(reason_prompt, default_reason)
                batch_reason = reason if batch == "a" else None
            else:
                reason = batch_reason
            outcome = _try_accept(
                store,
                update.name,
                session=session,
                signer=signer,
                approver=approver,
                reason=reason,
                at=clock(),
                before_accept=before_accept,
                reask=session.choose if batch is None else None,
            )
            outcomes = {"accepted": accepted, "skipped": skipped, "failed": failed, "rejected": rejected}
            outcomes[outcome].append(update.name)
    summary = ReviewSummary(tuple(accepted), tuple(rejected), tuple(skipped), tuple(failed))
    session.say("")
    session.say(
        f"review: {len(accepted)} accepted, {len(rejected)} rejected, {len(skipped)} skipped"
        + (f", {len(failed)} failed" if failed else "")
    )
    return summary


def _try_accept(
    store: GoldenStore,
    name: str,
    *,
    session: _Session,
    signer: Signer,
    approver: str,
    reason: str,
    at: str,
    before_accept: Callable[[str], tuple[bool, str]] | None,
    reask: Callable[[], str] | None = None,
) -> str:
    """Accept one update after the ``before_accept`` check: "accepted", "skipped", "rejected" or
    "failed". When the check changed the update (a re-recording), ``reask`` asks again about it."""
    if before_accept is not None:
        proceed, shown = before_accept(name)
        if shown:
            session.say(shown)
        if not proceed:
            answer = reask() if reask is not None else "s"
            if answer in {"a", "A"}:
                session.say(f"accepting the re-recorded update of {name}")
                proceed, shown = before_accept(name)
                if shown:
                    session.say(shown)
            elif answer in {"r", "R"}:
                store.discard(name)
                session.say(f"rejected {name}: pending files discarded")
                return "rejected"
        if not proceed:
            session.say(f"{name} stays pending: review it again")
            return "skipped"
    try:
        entry = accept(store, name, signer=signer, approver=approver, reason=reason, at=at)
    except ReplayError as exc:
        session.say(f"could not accept {name}: {exc}")
        return "failed"
    session.say(
        f"accepted {name}: approved by {entry['approver']} "
        f"(trace sha256 {entry['new_trace_sha256'][:12]}…, key {entry['keyid']})"
    )
    return "accepted"


class _Session:
    """Line-oriented prompts that behave the same on a terminal and on a pipe."""

    _ANSWERS: Final = frozenset({"a", "r", "s", "A", "R", "S", "q"})

    def __init__(self, *, input_fn: Callable[[str], str], output: TextIO, echo: bool) -> None:
        self._input, self._output, self._echo = input_fn, output, echo

    def say(self, text: str) -> None:
        self._output.write(text if text.endswith("\n") else text + "\n")
        self._output.flush()

    def ask(self, prompt: str) -> str | None:
        """One answer line, or None at end of input."""
        self._output.write(prompt)
        self._output.flush()
        try:
            answer = self._input("").strip()
        except EOFError:
            self.say("")
            return None
        if self._echo:  # no terminal echoed the typed line: keep the transcript readable
            self.say(answer)
        return answer

    def choose(self) -> str:
        """One of the answers in ``CHOICES_PROMPT``, or ``"eof"``."""
        while True:
            answer = self.ask(f"{CHOICES_PROMPT}? ")
            if answer is None:
                return "eof"
            if answer in self._ANSWERS:
                return answer
            self.say(f"unknown answer {answer!r}; type one letter: {CHOICES_PROMPT}")

    def reason(self, prompt: str | None, default: str) -> str:
        if prompt is None:
            return default
        answer = self.ask(prompt)
        return answer or default


def _header(update: PendingUpdate, index: int, total: int) -> str:
    parts = []
    if update.is_new_golden and update.has_trace_update:
        parts.append("new golden")
    elif update.has_trace_update:
        parts.append("trace update")
    if update.has_cassette_update:
        parts.append("cassette update")
    return f"[{index}/{total}] {update.name} ({', '.join(parts)})"


def _render(update: PendingUpdate, *, color: bool) -> str:
    if not update.has_trace_update:
        return "  trace unchanged; only the cassette was re-recorded"
    if update.error is not None:
        return f"  cannot diff: {update.error}"
    if update.diff.equal:
        return "  trace.json.new is identical to trace.json"
    result = ScenarioResult(name=update.name, status=ScenarioStatus.UPDATED, diff=update.diff)
    # render_text opens with a run summary line ("1 scenario: ..."); a review shows one
    # scenario at a time, so only its block is kept.
    return render_text([result], color=color).split("\n", 2)[2].rstrip("\n")


def _check_acceptable(store: GoldenStore, name: str, trace_bytes: bytes) -> None:
    """Refuse an update that could not be signed, before any file is moved."""
    where = store.display(store.paths(name).trace_new)
    try:
        trace = json.loads(trace_bytes)
    except ValueError as exc:
        raise SignatureError(f"cannot accept {where}: not valid JSON ({exc})") from exc
    if not isinstance(trace, dict):
        raise SignatureError(f"cannot accept {where}: not a JSON object")
    if trace.get("format_version") != TRACE_FORMAT_VERSION:
        raise FormatVersionError(
            f"cannot accept {where}: format_version {trace.get('format_version')!r} is not "
            f"{TRACE_FORMAT_VERSION}; re-record with `harness-replay record`"
        )
    audit = trace.get("audit", [])
    if not isinstance(audit, list) or not all(isinstance(entry, dict) for entry in audit):
        raise SignatureError(f"cannot accept {where}: 'audit' must be a list of objects")
    report = verify_chain(audit)
    if not report.ok:
        raise SignatureError(
            f"cannot accept {where}: its audit chain is broken at seq {report.first_bad_seq} "
            f"({report.message})"
        )
