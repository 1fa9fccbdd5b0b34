"""The audit log's hash chain over plain dict entries, verified against signed checkpoints.

An entry is ``{seq, at, actor, tenant, action, target, payload, prev_hash, entry_hash}``:
``seq`` is gapless from 0, ``prev_hash`` is the previous entry's ``entry_hash`` (64 zeros for
the first), and ``entry_hash`` is SHA-256 of the JCS bytes of the entry without it. The same
JCS bytes are the entry's Merkle leaf, so signed checkpoints (tree size + root) pin every
entry they cover; an attacker who rewrites the chain consistently is still caught by the roots.

Nothing here does I/O: the service stores entries and envelopes and hands them in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from harness.errors import AuditIntegrityError
from harness.integrity._fast_jcs import entry_leaf
from harness.integrity._fast_jcs import jcs as _jcs
from harness.integrity.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from harness.integrity.dsse import Envelope
from harness.integrity.keys import Signer, TrustedKeys
from harness.integrity.merkle import CompactRange, prefix_roots

GENESIS_HASH = "0" * 64
ENTRY_FIELDS = ("seq", "at", "actor", "tenant", "action", "target", "payload", "prev_hash")
_REQUIRED = frozenset((*ENTRY_FIELDS, "entry_hash"))


class Problem(StrEnum):
    """What ``verify_chain`` found wrong first."""

    MODIFIED = "modified"
    MISSING = "missing"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    INSERTED = "inserted"
    BAD_SIGNATURE = "bad_signature"
    INCONSISTENT_CHECKPOINT = "inconsistent_checkpoint"
    ROOT_MISMATCH = "root_mismatch"


@dataclass(frozen=True)
class ChainReport:
    """The verdict on an audit log: ``ok``, or the first bad seq, what is wrong, and why."""

    ok: bool
    entries: int
    first_bad_seq: int | None
    problem: Problem | None
    message: str
    checkpoints_verified: int

    def raise_for_problem(self) -> None:
        """Raise ``AuditIntegrityError`` carrying this report's message unless ``ok``."""
        if not self.ok:
            raise AuditIntegrityError(
                self.message, problem=str(self.problem), first_bad_seq=self.first_bad_seq
            )


def entry_body(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed part of an entry: everything except ``entry_hash``."""
    body = dict(entry)
    body.pop("entry_hash", None)
    return body


def compute_entry_hash(body: Mapping[str, Any]) -> str:
    """``sha256_hex(jcs_bytes(body))``."""
    return hashlib.sha256(_jcs(body)).hexdigest()


def leaf_data(entry: Mapping[str, Any]) -> bytes:
    """The entry's Merkle leaf data: ``jcs_bytes(entry_body(entry))``."""
    fast = entry_leaf(entry)
    return fast if fast is not None else _jcs(entry_body(entry))


def make_entry(
    *,
    seq: int,
    prev_hash: str,
    at: str,
    actor: str,
    tenant: str,
    action: str,
    target: str,
    payload: Mapping[str, Any],
) -> dict[str, Any]:
    """A correctly hashed entry linked to ``prev_hash``."""
    if type(seq) is not int or seq < 0:
        raise ValueError(f"seq must be a non-negative int, got {seq!r}")
    body: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "tenant": tenant,
        "action": action,
        "target": target,
        "payload": dict(payload),
        "prev_hash": prev_hash,
    }
    return {**body, "entry_hash": compute_entry_hash(body)}


def next_entry(
    previous: Mapping[str, Any] | None,
    *,
    at: str,
    actor: str,
    tenant: str,
    action: str,
    target: str,
    payload: Mapping[str, Any],
) -> dict[str, Any]:
    """The entry that follows ``previous`` (or the genesis entry when it is None)."""
    seq, prev_hash = 0, GENESIS_HASH
    if previous is not None:
        seq, prev_hash = int(previous["seq"]) + 1, str(previous["entry_hash"])
    return make_entry(
        seq=seq,
        prev_hash=prev_hash,
        at=at,
        actor=actor,
        tenant=tenant,
        action=action,
        target=target,
        payload=payload,
    )


def build_checkpoints(
    entries: Sequence[Mapping[str, Any]],
    *,
    every: int,
    signer: Signer,
    origin: str,
    time_fn: Callable[[], str],
) -> list[Envelope]:
    """Signed checkpoints after every ``every`` entries plus a final one sealing the whole log."""
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    envelopes: list[Envelope] = []
    tree = CompactRange()
    for entry in entries:
        tree.append(_leaf_hash(_jcs(entry_body(entry))))
        if tree.size % every == 0 or tree.size == len(entries):
            checkpoint = Checkpoint(
                origin=origin,
                tree_size=tree.size,
                root_hash=tree.root().hex(),
                last_seq=tree.size - 1,
                time=time_fn(),
            )
            # Every root comes from one append-only accumulator, so each checkpoint extends
            # the one before by construction; no consistency proof is needed to sign.
            envelope = sign_checkpoint(checkpoint, signer, previous=None, consistency_proof=None)
            envelopes.append(envelope)
    return envelopes


def verify_chain(
    entries: Sequence[Mapping[str, Any]],
    *,
    checkpoints: Sequence[Envelope] = (),
    trusted: TrustedKeys | None = None,
    require_sealed: bool = False,
) -> ChainReport:
    """Verify seqs, hashes and links, then every signed checkpoint root; report the first bad seq.

    With ``require_sealed`` every entry must be covered by a signed checkpoint (the final
    one seals the whole log), which is what makes tail truncation and appended forgeries
    detectable.
    """
    if (checkpoints or require_sealed) and trusted is None:
        raise ValueError("verifying checkpoints needs trusted keys: pass trusted=TrustedKeys(...)")
    count = len(entries)
    opened = _open_checkpoints(checkpoints, trusted)
    if isinstance(opened, _Finding):
        return opened.report(count, 0)

    walk = _walk_chain(entries)
    root_finding, verified = _check_roots(walk.leaves, opened)
    findings = [f for f in (walk.finding, root_finding) if f is not None]
    findings += _tail_findings(count, opened, require_sealed=require_sealed)
    if not findings:
        sealed = f", sealed by {verified} signed checkpoint(s)" if verified else ""
        return ChainReport(
            ok=True,
            entries=count,
            first_bad_seq=None,
            problem=None,
            message=f"audit log verified: {count} entries{sealed}",
            checkpoints_verified=verified,
        )
    return min(findings, key=_Finding.sort_key).report(count, verified)


@dataclass(frozen=True)
class _Finding:
    seq: int | None
    problem: Problem
    message: str
    # Where the finding sits in log order, and which finding wins a tie there: a root mismatch
    # over [a, b) only beats a chain finding that lies at or after b.
    order: int = 0
    rank: int = 1

    def sort_key(self) -> tuple[int, int]:
        return (self.order, self.rank)

    def report(self, count: int, verified: int) -> ChainReport:
        return ChainReport(
            ok=False,
            entries=count,
            first_bad_seq=self.seq,
            problem=self.problem,
            message=self.message,
            checkpoints_verified=verified,
        )


@dataclass(frozen=True)
class _Walk:
    leaves: list[bytes]
    finding: _Finding | None


def _open_checkpoints(
    envelopes: Sequence[Envelope], trusted: TrustedKeys | None
) -> list[Checkpoint] | _Finding:
    if not envelopes or trusted is None:
        return []
    checkpoints: dict[int, Checkpoint] = {}
    origin: str | None = None
    for i, envelope in enumerate(envelopes):
        try:
            checkpoint = open_checkpoint(envelope, trusted)
        except AuditIntegrityError as exc:
            return _Finding(None, Problem.BAD_SIGNATURE, f"checkpoint #{i} rejected: {exc.message}")
        if origin is not None and checkpoint.origin != origin:
            return _Finding(
                None,
                Problem.INCONSISTENT_CHECKPOINT,
                f"checkpoint #{i} is for log {checkpoint.origin!r}, the others for {origin!r}",
            )
        origin = checkpoint.origin
        seen = checkpoints.setdefault(checkpoint.tree_size, checkpoint)
        if seen.root_hash != checkpoint.root_hash:
            return _Finding(
                None,
                Problem.INCONSISTENT_CHECKPOINT,
                f"two signed checkpoints give tree_size {checkpoint.tree_size} different roots "
                f"({seen.root_hash} and {checkpoint.root_hash}): the signer was made to sign "
                "two histories",
            )
    return [checkpoints[size] for size in sorted(checkpoints)]


def _walk_chain(entries: Sequence[Mapping[str, Any]]) -> _Walk:
    """Check seq, entry_hash and prev_hash in order; collect leaf hashes up to the first fault.

    The loop takes only entries that pass every check of ``_check_entry`` (the usual case, at
    encoder-and-hash speed); from the first one that does not, ``_check_entry`` decides.
    """
    leaves: list[bytes] = []
    append = leaves.append
    sha256 = hashlib.sha256
    prev_hash = GENESIS_HASH
    i = 0
    for i, entry in enumerate(entries):
        data = entry_leaf(entry)
        if data is None or entry["seq"] != i or entry["prev_hash"] != prev_hash:
            break
        entry_hash = sha256(data).hexdigest()
        if entry_hash != entry["entry_hash"]:
            break
        prev_hash = entry_hash
        append(sha256(b"\x00" + data).digest())
    else:
        return _Walk(leaves, None)
    resume = i
    for j in range(resume, len(entries)):
        checked = _check_entry(entries, j, prev_hash)
        if isinstance(checked, _Finding):
            return _Walk(leaves, checked)
        prev_hash = entries[j]["entry_hash"]
        append(_leaf_hash(checked))
    return _Walk(leaves, None)


def _check_entry(entries: Sequence[Mapping[str, Any]], i: int, prev_hash: str) -> bytes | _Finding:
    """Entry ``i``'s leaf data if its seq, hash and link are right, else what is wrong."""
    entry = entries[i]
    seq = entry.get("seq")
    if type(seq) is not int or seq != i:
        return _classify_seq(entries, i)
    if not entry.keys() >= _REQUIRED:
        missing = [name for name in (*ENTRY_FIELDS, "entry_hash") if name not in entry]
        return _at(i, Problem.MODIFIED, f"entry seq {i} lacks {missing}")
    body = entry_body(entry)
    try:
        data = _jcs(body)
    except (ValueError, TypeError) as exc:
        return _at(i, Problem.MODIFIED, f"entry seq {i} is not canonical JSON: {exc}")
    if hashlib.sha256(data).hexdigest() != entry.get("entry_hash"):
        return _hash_mismatch(entries, i)
    if body["prev_hash"] != prev_hash:
        # Each entry hashes correctly, so one of the two was rewritten with a recomputed
        # hash; name the earlier one so the report never points past the damage.
        bad = max(i - 1, 0)
        message = (
            f"the chain breaks between seq {bad} and seq {i}: entry {i}'s prev_hash "
            f"{body['prev_hash']!r} is not the entry_hash of its predecessor "
            f"({prev_hash!r}); entry {bad} was rewritten or entry {i}'s link was altered"
        )
        return _at(bad, Problem.MODIFIED, message)
    return data


def _hash_mismatch(entries: Sequence[Mapping[str, Any]], i: int) -> _Finding:
    if i + 1 < len(entries) and entries[i + 1].get("seq") == i:
        # The genuine seq i follows: this entry is a forgery slipped in before it.
        message = (
            f"inserted entry: a forged entry claiming seq {i} (its hash does not match) "
            f"precedes the genuine seq {i}"
        )
        return _at(i, Problem.INSERTED, message)
    message = (
        f"entry seq {i} was modified: its contents no longer hash to its entry_hash "
        f"{entries[i].get('entry_hash')!r}"
    )
    return _at(i, Problem.MODIFIED, message)


def _classify_seq(entries: Sequence[Mapping[str, Any]], i: int) -> _Finding:
    """Why position ``i`` does not hold seq ``i`` (positions 0..i-1 hold seqs 0..i-1)."""
    seq = entries[i].get("seq")
    if type(seq) is not int or seq < 0:
        return _at(i, Problem.MODIFIED, f"the entry at position {i} has seq {seq!r}, not an int")
    if seq < i:
        # Two entries claim the same seq. Side by side we cannot tell which is the forgery,
        # so name the earlier one; further apart, the out-of-place copy is the insertion.
        bad = seq if seq == i - 1 else i
        message = (
            f"inserted entry: seq {seq} appears again at position {i} (expected seq {i}); "
            "a forged entry was added to the log"
        )
        return _at(bad, Problem.INSERTED, message)
    later = [entry.get("seq") for entry in entries[i + 1 :]]
    if later.count(seq):
        message = (
            f"inserted entry: position {i} holds a second entry claiming seq {seq} "
            f"(expected seq {i})"
        )
        return _at(i, Problem.INSERTED, message)
    if i in later:
        window = [seq, *later[: later.index(i) + 1]]
        seqs = [n for n in window if type(n) is int]
        if len(seqs) == len(window) and sorted(seqs) == list(range(i, i + len(window))):
            message = (
                f"entries reordered: seq {seq} comes before seq {i} (position {i}); "
                f"seqs {i}..{i + len(window) - 1} are out of order"
            )
            return _at(i, Problem.REORDERED, message)
        message = f"inserted entry: position {i} holds an unexpected seq {seq} (expected seq {i})"
        return _at(i, Problem.INSERTED, message)
    gap = f"seq {i}" if seq == i + 1 else f"seqs {i}..{seq - 1}"
    message = f"{gap} missing: seq {seq} follows seq {i - 1} (deleted from the log)"
    if i == 0:
        message = f"{gap} missing: the log starts at seq {seq} (deleted from the log)"
    return _at(i, Problem.MISSING, message)


def _check_roots(leaves: list[bytes], checkpoints: list[Checkpoint]) -> tuple[_Finding | None, int]:
    """Compare each checkpoint's root with the tree of the (so far valid) leaves it covers."""
    covered = [c for c in checkpoints if c.tree_size <= len(leaves)]  # sorted by tree_size
    roots = prefix_roots(leaves, [c.tree_size for c in covered])
    verified = 0
    start = 0
    for checkpoint, root in zip(covered, roots, strict=True):
        computed = root.hex()
        if computed != checkpoint.root_hash:
            end = checkpoint.tree_size
            message = (
                f"entries seq {start}..{end - 1} do not match the signed checkpoint at tree_size "
                f"{end} (signed root {checkpoint.root_hash}, computed {computed}): an entry in "
                "that range was modified, inserted, deleted or reordered and the chain rehashed "
                "to hide it"
            )
            return _Finding(start, Problem.ROOT_MISMATCH, message, order=end - 1, rank=2), verified
        verified += 1
        start = checkpoint.tree_size
    return None, verified


def _tail_findings(
    count: int, checkpoints: list[Checkpoint], *, require_sealed: bool
) -> list[_Finding]:
    sealed = checkpoints[-1].tree_size if checkpoints else 0
    if sealed > count:
        message = (
            f"log truncated: it ends at seq {count - 1} but a signed checkpoint covers "
            f"{sealed} entries (seqs {count}..{sealed - 1} were removed)"
        )
        return [_Finding(count, Problem.TRUNCATED, message, order=count, rank=0)]
    if require_sealed and not checkpoints and count:
        message = f"no signed checkpoint covers the log: its {count} entries are unsealed"
        return [_Finding(0, Problem.INSERTED, message, order=0, rank=0)]
    if require_sealed and sealed < count:
        message = (
            f"entries seq {sealed}..{count - 1} are not covered by any signed checkpoint "
            f"(the last seal covers {sealed} entries): they were appended after sealing"
        )
        return [_Finding(sealed, Problem.INSERTED, message, order=sealed, rank=0)]
    return []


def _at(seq: int, problem: Problem, message: str) -> _Finding:
    return _Finding(seq, problem, message, order=seq, rank=1)


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()
