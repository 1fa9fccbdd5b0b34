"""Reviewing pending golden updates: accept signs and records, reject discards, the prompt loop."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.canonical import dumps_canonical, sha256_hex
from harness.integrity import Ed25519Signer, TrustedKeys
from replay.errors import FormatVersionError, GoldenMissing, SignatureError
from replay.review import (
    CHOICES_PROMPT,
    ReviewSummary,
    accept,
    interactive_review,
    list_pending,
    reject,
)
from replay.signing import append_approval, sign_golden, verify_golden
from replay.store import GoldenStore, audit_jsonl_bytes
from tests.support.goldens import chained_audit, trace_bytes

pytestmark = pytest.mark.tier1

AT = "2026-01-01T10:00:00Z"


def audit(n: int) -> list[dict[str, Any]]:
    return chained_audit(n)


def trace(n: int, *, final: str = "SUCCEEDED") -> bytes:
    return trace_bytes(audit(n), final=final)


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate()


@pytest.fixture
def trusted(signer: Ed25519Signer) -> TrustedKeys:
    return TrustedKeys([signer.public_record("reviewer")])


@pytest.fixture
def store(tmp_path: Path, signer: Ed25519Signer) -> GoldenStore:
    """Three approved goldens (a, b, c), each with a pending update (more audit, new final)."""
    store = GoldenStore(tmp_path)
    for name in ("a", "b", "c"):
        folder = store.goldens_dir / name
        folder.mkdir(parents=True)
        (folder / "scenario.yaml").write_text(f"name: {name}\n")
        store.write_golden(name, trace(2), audit(2), cassette_new=None)
        sign_golden(store, name, signer=signer)
        append_approval(
            store,
            name,
            signer=signer,
            approver="alice",
            reason="initial",
            old_trace_sha256=None,
            at=AT,
        )
        store.write_new(name, trace(3, final="FAILED"), ci=False)
    return store


def scripted(text: str) -> Callable[[str], str]:
    """An ``input``-like function reading ``text`` line by line; EOFError at the end."""
    lines: Iterator[str] = iter(text.splitlines())

    def read(_prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    return read


def review(
    store: GoldenStore, signer: Ed25519Signer, script: str, **kwargs: Any
) -> tuple[ReviewSummary, str]:
    out = io.StringIO()
    summary = interactive_review(
        store,
        signer=signer,
        approver="alice",
        reason_prompt="reason [reviewed]: ",
        input_fn=scripted(script),
        output=out,
        isatty=False,
        at_fn=lambda: AT,
        **kwargs,
    )
    return summary, out.getvalue()


def approvals(store: GoldenStore, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in store.paths(name).approvals.read_bytes().splitlines()]


def test_list_pending_diffs_against_the_golden(store: GoldenStore) -> None:
    store.cassettes_dir.mkdir()
    store.paths("b").cassette_new.write_text("interactions: []\n")
    pending = list_pending(store)
    assert [p.name for p in pending] == ["a", "b", "c"]
    first = pending[0]
    assert not first.diff.equal
    assert "final" in first.diff.sections and "audit" in first.diff.sections
    assert [p.has_cassette_update for p in pending] == [False, True, False]


def test_accept_promotes_signs_and_records_the_approval(
    store: GoldenStore, signer: Ed25519Signer, trusted: TrustedKeys
) -> None:
    paths = store.paths("a")
    old_sha = sha256_hex(paths.trace.read_bytes())
    new_bytes = paths.trace_new.read_bytes()
    entry = accept(store, "a", signer=signer, approver="bob", reason="new step", at=AT)
    assert paths.trace.read_bytes() == new_bytes
    assert not paths.trace_new.exists()
    assert paths.audit.read_bytes() == audit_jsonl_bytes(audit(3))
    assert entry["old_trace_sha256"] == old_sha
    assert entry["new_trace_sha256"] == sha256_hex(new_bytes)
    assert entry["audit_sha256"] == sha256_hex(paths.audit.read_bytes())
    assert (entry["approver"], entry["reason"], entry["at"]) == ("bob", "new step", AT)
    assert approvals(store, "a")[-1] == entry
    assert len(approvals(store, "a")) == 2
    result = verify_golden(store, "a", trusted)
    assert result.ok, result.problems
    assert (result.entries, result.approvals, result.signer) == (3, 2, "reviewer")
    assert store.pending() == ["b", "c"]


def test_accept_of_a_cassette_only_update(
    store: GoldenStore, signer: Ed25519Signer, trusted: TrustedKeys
) -> None:
    store.discard("a")
    store.cassettes_dir.mkdir()
    paths = store.paths("a")
    paths.cassette_new.write_text("interactions: []\n")
    sha = sha256_hex(paths.trace.read_bytes())
    entry = accept(store, "a", signer=signer, approver="bob", reason="re-recorded", at=AT)
    assert paths.cassette.read_text() == "interactions: []\n"
    assert entry["old_trace_sha256"] == entry["new_trace_sha256"] == sha
    assert verify_golden(store, "a", trusted).ok


def test_accept_refuses_a_broken_update_before_moving_anything(
    store: GoldenStore, signer: Ed25519Signer
) -> None:
    paths = store.paths("a")
    golden = paths.trace.read_bytes()
    bad = json.loads(paths.trace_new.read_bytes())
    bad["audit"][1]["payload"]["n"] = 7
    paths.trace_new.write_bytes(dumps_canonical(bad).encode())
    with pytest.raises(SignatureError, match=r"audit chain is broken at seq 1"):
        accept(store, "a", signer=signer, approver="bob", reason="x", at=AT)
    bad["format_version"] = 0
    paths.trace_new.write_bytes(dumps_canonical(bad).encode())
    with pytest.raises(FormatVersionError, match="re-record"):
        accept(store, "a", signer=signer, approver="bob", reason="x", at=AT)
    assert paths.trace.read_bytes() == golden
    assert paths.trace_new.exists()


def test_reject_discards_pending_files(store: GoldenStore) -> None:
    store.cassettes_dir.mkdir()
    paths = store.paths("a")
    paths.cassette_new.write_text("x\n")
    golden = paths.trace.read_bytes()
    reject(store, "a")
    assert not paths.trace_new.exists() and not paths.cassette_new.exists()
    assert paths.trace.read_bytes() == golden
    with pytest.raises(GoldenMissing, match="no pending update"):
        reject(store, "a")


def test_interactive_accept_with_reason_then_reject_then_eof(
    store: GoldenStore, signer: Ed25519Signer, trusted: TrustedKeys
) -> None:
    summary, out = review(store, signer, "a\nmy reason\nr\n")
    assert summary == ReviewSummary(accepted=("a",), rejected=("b",), skipped=("c",))
    assert approvals(store, "a")[-1]["reason"] == "my reason"
    assert verify_golden(store, "a", trusted).ok
    assert not store.paths("b").trace_new.exists()
    assert store.pending() == ["c"]  # end of input skips what is left
    assert "[1/3] a (trace update)" in out
    assert f"{CHOICES_PROMPT}? a\n" in out  # answers are echoed when there is no terminal
    assert "STRUCTURAL in final" in out  # the diff was shown before the question
    assert CHOICES_PROMPT in out
    assert "review: 1 accepted, 1 rejected, 1 skipped" in out


def test_interactive_default_reason_and_skip(store: GoldenStore, signer: Ed25519Signer) -> None:
    summary, _ = review(store, signer, "s\na\n\nq\n")
    assert summary == ReviewSummary(accepted=("b",), skipped=("a", "c"))
    assert approvals(store, "b")[-1]["reason"] == "reviewed"
    assert store.pending() == ["a", "c"]


def test_interactive_skip_all(store: GoldenStore, signer: Ed25519Signer) -> None:
    summary, out = review(store, signer, "S\n")
    assert summary == ReviewSummary(skipped=("a", "b", "c"))
    assert store.pending() == ["a", "b", "c"]
    assert "[2/3]" not in out  # nothing after "skip all" is shown


def test_interactive_accept_all_asks_the_reason_once(
    store: GoldenStore, signer: Ed25519Signer, trusted: TrustedKeys
) -> None:
    summary, _ = review(store, signer, "x\nA\nbatch reason\n")
    assert summary.accepted == ("a", "b", "c")
    assert store.pending() == []
    for name in ("a", "b", "c"):
        assert approvals(store, name)[-1]["reason"] == "batch reason"
        assert verify_golden(store, name, trusted).ok


def test_interactive_reject_all(store: GoldenStore, signer: Ed25519Signer) -> None:
    summary, out = review(store, signer, "R\n")
    assert summary == ReviewSummary(rejected=("a", "b", "c"))
    assert store.pending() == []
    assert "rejected c: pending files discarded" in out


def test_interactive_unknown_answer_asks_again(store: GoldenStore, signer: Ed25519Signer) -> None:
    summary, out = review(store, signer, "yes\nS\n")
    assert "unknown answer 'yes'" in out
    assert summary.skipped == ("a", "b", "c")


def test_interactive_immediate_eof_skips_everything(store: GoldenStore, signer: Ed25519Signer) -> None:
    summary, _ = review(store, signer, "")
    assert summary == ReviewSummary(skipped=("a", "b", "c"))
    assert store.pending() == ["a", "b", "c"]


def test_interactive_without_reason_prompt_uses_default(store: GoldenStore, signer: Ed25519Signer) -> None:
    out = io.StringIO()
    summary = interactive_review(
        store,
        signer=signer,
        approver="alice",
        reason_prompt=None,
        default_reason="from --reason",
        input_fn=scripted("a\ns\ns\n"),
        output=out,
        isatty=False,
        at_fn=lambda: AT,
    )
    assert summary.accepted == ("a",)
    assert approvals(store, "a")[-1]["reason"] == "from --reason"


def test_interactive_reports_a_failed_accept_and_goes_on(store: GoldenStore, signer: Ed25519Signer) -> None:
    paths = store.paths("a")
    paths.trace_new.write_bytes(b"not json")
    summary, out = review(store, signer, "a\n\nr\nr\n")
    assert summary.failed == ("a",)
    assert summary.rejected == ("b", "c")
    assert "cannot diff: the actual trace is not valid JSON" in out
    assert "could not accept a:" in out
    assert paths.trace_new.exists()


def test_interactive_with_nothing_pending(tmp_path: Path, signer: Ed25519Signer) -> None:
    out = io.StringIO()
    summary = interactive_review(
        GoldenStore(tmp_path),
        signer=signer,
        approver="alice",
        reason_prompt=None,
        input_fn=scripted(""),
        output=out,
        isatty=False,
    )
    assert summary == ReviewSummary()
    assert "no pending golden updates" in out.getvalue()
