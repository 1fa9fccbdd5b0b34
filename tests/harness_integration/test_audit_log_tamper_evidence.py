"""Audit log tamper evidence: every edit to a sealed log is caught with the public key alone.

Test plan scenario "modified historical audit entry". The signed log fixture is a 10,000-entry
log with signed checkpoints every 640 entries plus a final one sealing it; the verifier only
ever sees the service's *public* key.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.canonical import jcs_bytes
from harness.errors import AuditIntegrityError
from harness.integrity import (
    GENESIS_HASH,
    Checkpoint,
    CompactRange,
    Ed25519Signer,
    Envelope,
    Problem,
    Signature,
    TrustedKeys,
    build_checkpoints,
    compute_entry_hash,
    consistency_proof,
    entry_body,
    leaf_data,
    leaf_hash,
    make_entry,
    next_entry,
    open_checkpoint,
    sign_checkpoint,
    verify_chain,
)

pytestmark = [pytest.mark.tier1, pytest.mark.security]

SIZE = 10_000
EVERY = 640  # 15 interior checkpoints, then the final seal at 10,000
ORIGIN = "harness.test/audit"
FIRST, MIDDLE, LAST = "first", "middle", "last"

Entry = dict[str, Any]


@dataclass(frozen=True)
class SignedLog:
    entries: list[Entry]
    checkpoints: list[Envelope]
    trusted: TrustedKeys  # public key only
    service_keyid: str


def _clock() -> Callable[[], str]:
    ticks = itertools.count()

    def now() -> str:
        tick = next(ticks)
        return f"2024-06-01T00:{tick // 60 % 60:02d}:{tick % 60:02d}Z"

    return now


def _log(size: int) -> list[Entry]:
    entries: list[Entry] = []
    previous: Entry | None = None
    for i in range(size):
        previous = next_entry(
            previous,
            at=f"2024-06-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000000Z",
            actor=f"user:{('alice', 'bob', 'zoë')[i % 3]}",
            tenant=f"tenant-{i % 7}",
            action=("run.create", "run.approve", "tool.call", "golden.update")[i % 4],
            target=f"run:{i // 10:06d}",
            payload={"n": i, "ok": i % 2 == 0, "note": f"step {i} — ✓", "tags": ["a", str(i % 5)]},
        )
        entries.append(previous)
    return entries


@pytest.fixture(scope="module")
def signed_log() -> SignedLog:
    service = Ed25519Signer.generate()
    entries = _log(SIZE)
    checkpoints = build_checkpoints(
        entries, every=EVERY, signer=service, origin=ORIGIN, time_fn=_clock()
    )
    trusted = TrustedKeys.from_records([service.public_record("audit-service")])
    return SignedLog(entries, checkpoints, trusted, service.keyid)


def _verify(log: SignedLog, entries: Sequence[Mapping[str, Any]]) -> Any:
    return verify_chain(
        entries, checkpoints=log.checkpoints, trusted=log.trusted, require_sealed=True
    )


def _range_start(seq: int) -> int:
    """First seq of the checkpoint range holding ``seq`` (what root bisection can name)."""
    return seq // EVERY * EVERY


# --- tampering -------------------------------------------------------------------------------


def _position(where: str, *, size: int = SIZE) -> int:
    return {FIRST: 0, MIDDLE: size // 2, LAST: size - 1}[where]


def _forge(template: Mapping[str, Any], seq: int) -> Entry:
    forged = copy.deepcopy(dict(template))
    forged.update(seq=seq, action="admin.grant", payload={"role": "owner", "to": "mallory"})
    return forged  # hashes copied from the template: stale


def _tamper(kind: str, where: str, entries: list[Entry]) -> tuple[list[Entry], int]:
    """Apply one naive edit; return the log and the first position whose content changed."""
    log = list(entries)
    i = _position(where)
    if kind == "modify":
        log[i] = {**log[i], "payload": {**log[i]["payload"], "ok": "tampered"}}
        return log, i
    if kind == "delete":
        del log[i]
        return log, i
    if kind == "swap":
        i = min(i, SIZE - 2)
        log[i], log[i + 1] = log[i + 1], log[i]
        return log, i
    if kind == "truncate":
        return log[:i], i
    if kind == "insert":
        at = SIZE if where == LAST else i
        log.insert(at, _forge(entries[min(at, SIZE - 1)], seq=at))
        return log, at
    raise AssertionError(kind)


def _rehash_from(log: list[Entry], start: int, *, renumber: bool) -> list[Entry]:
    """The careful attacker: recompute prev_hash/entry_hash (and maybe seq) from ``start`` on."""
    fixed = log[:start]
    for j in range(start, len(log)):
        fields = {k: v for k, v in log[j].items() if k not in ("seq", "prev_hash", "entry_hash")}
        prev_hash = fixed[j - 1]["entry_hash"] if j else GENESIS_HASH
        fixed.append(
            make_entry(seq=j if renumber else log[j]["seq"], prev_hash=prev_hash, **fields)
        )
    return fixed


KINDS = ["modify", "delete", "swap", "truncate", "insert"]
WHERE = [FIRST, MIDDLE, LAST]

# (kind, where) -> (problem, first bad seq) for the naive attacker, whose hashes are stale.
NAIVE = {
    ("modify", FIRST): (Problem.MODIFIED, 0),
    ("modify", MIDDLE): (Problem.MODIFIED, 5000),
    ("modify", LAST): (Problem.MODIFIED, 9999),
    ("delete", FIRST): (Problem.MISSING, 0),
    ("delete", MIDDLE): (Problem.MISSING, 5000),
    ("delete", LAST): (Problem.TRUNCATED, 9999),  # losing the last entry is a truncation
    ("swap", FIRST): (Problem.REORDERED, 0),
    ("swap", MIDDLE): (Problem.REORDERED, 5000),
    ("swap", LAST): (Problem.REORDERED, 9998),
    ("truncate", FIRST): (Problem.TRUNCATED, 0),
    ("truncate", MIDDLE): (Problem.TRUNCATED, 5000),
    ("truncate", LAST): (Problem.TRUNCATED, 9999),
    ("insert", FIRST): (Problem.INSERTED, 0),
    ("insert", MIDDLE): (Problem.INSERTED, 5000),
    ("insert", LAST): (Problem.INSERTED, 10_000),  # appended after the seal
}


def _rehashed(kind: str, where: str) -> tuple[Problem, int]:
    """Expected verdict once every hash after the edit is recomputed (seqs kept)."""
    problem, seq = NAIVE[kind, where]
    if kind == "modify":
        # The chain is self-consistent again; only the signed roots notice.
        return Problem.ROOT_MISMATCH, _range_start(seq)
    return problem, seq


def _renumbered(kind: str, where: str) -> tuple[Problem, int]:
    """Expected verdict when the attacker also renumbers seqs into a gapless run."""
    problem, seq = _rehashed(kind, where)
    # Renumbered, a deletion, swap or insertion inside the sealed range is a consistent chain
    # that only the roots contradict; at the tail it stays a truncation or an unsealed append.
    if problem in (Problem.MISSING, Problem.REORDERED) or (kind, where) in (
        ("insert", FIRST),
        ("insert", MIDDLE),
    ):
        return Problem.ROOT_MISMATCH, _range_start(seq)
    return problem, seq


# --- the scenario ----------------------------------------------------------------------------


def test_untouched_log_verifies_with_the_public_key_only(signed_log: SignedLog) -> None:
    report = _verify(signed_log, signed_log.entries)
    assert report.ok, report.message
    assert report.entries == SIZE
    assert report.checkpoints_verified == len(signed_log.checkpoints) == SIZE // EVERY + 1
    assert report.first_bad_seq is None
    assert report.problem is None
    report.raise_for_problem()


def test_modified_historical_audit_entry(signed_log: SignedLog) -> None:
    """Test plan: a signed log fixture with one intentional modification is reported."""
    fixture = list(signed_log.entries)
    fixture[1234] = {**fixture[1234], "actor": "user:mallory"}
    report = _verify(signed_log, fixture)
    assert not report.ok
    assert (report.problem, report.first_bad_seq) == (Problem.MODIFIED, 1234)
    assert "seq 1234" in report.message
    assert "modified" in report.message
    with pytest.raises(AuditIntegrityError, match="seq 1234") as caught:
        report.raise_for_problem()
    assert caught.value.details == {"problem": "modified", "first_bad_seq": 1234}


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("kind", KINDS)
def test_naive_tampering_is_located_exactly(signed_log: SignedLog, kind: str, where: str) -> None:
    tampered, _ = _tamper(kind, where, signed_log.entries)
    report = _verify(signed_log, tampered)
    assert not report.ok
    assert (report.problem, report.first_bad_seq) == NAIVE[kind, where], report.message
    assert f"seq {report.first_bad_seq}" in report.message or f"seqs {report.first_bad_seq}" in (
        report.message
    )


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("kind", KINDS)
def test_attacker_recomputing_every_later_hash_is_caught(
    signed_log: SignedLog, kind: str, where: str
) -> None:
    tampered, start = _tamper(kind, where, signed_log.entries)
    rehashed = _rehash_from(tampered, start, renumber=False)
    if kind != "truncate" and (kind, where) != ("delete", LAST):
        assert rehashed != tampered  # the attacker really did recompute something
    report = _verify(signed_log, rehashed)
    assert not report.ok
    assert (report.problem, report.first_bad_seq) == _rehashed(kind, where), report.message


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("kind", ["delete", "swap", "insert"])
def test_attacker_renumbering_seqs_is_caught_by_the_signed_roots(
    signed_log: SignedLog, kind: str, where: str
) -> None:
    tampered, start = _tamper(kind, where, signed_log.entries)
    renumbered = _rehash_from(tampered, start, renumber=True)
    assert [e["seq"] for e in renumbered] == list(range(len(renumbered)))
    report = _verify(signed_log, renumbered)
    assert not report.ok
    assert (report.problem, report.first_bad_seq) == _renumbered(kind, where), report.message


def test_root_mismatch_names_the_range_and_both_roots(signed_log: SignedLog) -> None:
    tampered, start = _tamper("modify", MIDDLE, signed_log.entries)
    report = _verify(signed_log, _rehash_from(tampered, start, renumber=False))
    assert report.problem is Problem.ROOT_MISMATCH
    assert "entries seq 4480..5119" in report.message
    assert "tree_size 5120" in report.message
    assert report.checkpoints_verified == 4480 // EVERY


def test_unsealed_tail_is_reported_when_sealing_is_required(signed_log: SignedLog) -> None:
    without_seal = signed_log.checkpoints[:-1]
    report = verify_chain(
        signed_log.entries,
        checkpoints=without_seal,
        trusted=signed_log.trusted,
        require_sealed=True,
    )
    assert (report.problem, report.first_bad_seq) == (Problem.INSERTED, 9600)
    relaxed = verify_chain(signed_log.entries, checkpoints=without_seal, trusted=signed_log.trusted)
    assert relaxed.ok, relaxed.message


def test_chain_alone_still_catches_naive_edits(signed_log: SignedLog) -> None:
    tampered, _ = _tamper("modify", MIDDLE, signed_log.entries)
    report = verify_chain(tampered)
    assert (report.problem, report.first_bad_seq) == (Problem.MODIFIED, 5000)
    assert verify_chain(signed_log.entries).ok


# --- the checkpoints themselves --------------------------------------------------------------


def test_checkpoints_signed_by_an_untrusted_key_are_rejected(signed_log: SignedLog) -> None:
    tampered, start = _tamper("modify", MIDDLE, signed_log.entries)
    rewritten = _rehash_from(tampered, start, renumber=False)
    resealed = build_checkpoints(
        rewritten, every=EVERY, signer=Ed25519Signer.generate(), origin=ORIGIN, time_fn=_clock()
    )
    report = verify_chain(
        rewritten, checkpoints=resealed, trusted=signed_log.trusted, require_sealed=True
    )
    assert not report.ok
    assert report.problem is Problem.BAD_SIGNATURE
    assert "not signed by a trusted key" in report.message


def test_checkpoint_claiming_the_trusted_keyid_but_signed_by_another_key_is_rejected(
    signed_log: SignedLog,
) -> None:
    impostor = Ed25519Signer.generate()
    resealed = build_checkpoints(
        signed_log.entries, every=EVERY, signer=impostor, origin=ORIGIN, time_fn=_clock()
    )
    relabelled = [
        Envelope(env.payload_type, env.payload, (Signature(signed_log.service_keyid, s.sig),))
        for env in resealed
        for s in env.signatures
    ]
    assert relabelled[0].signatures[0].keyid == signed_log.service_keyid
    report = verify_chain(
        signed_log.entries, checkpoints=relabelled, trusted=signed_log.trusted, require_sealed=True
    )
    assert report.problem is Problem.BAD_SIGNATURE
    assert signed_log.service_keyid in report.message


def test_two_checkpoints_for_one_size_with_different_roots_are_inconsistent(
    signed_log: SignedLog,
) -> None:
    signer = Ed25519Signer.generate()
    trusted = TrustedKeys.from_records([signer.public_record("audit")])
    entries = signed_log.entries[:100]
    honest = build_checkpoints(entries, every=50, signer=signer, origin=ORIGIN, time_fn=_clock())
    forked = list(entries)
    forked[10] = {**forked[10], "action": "forked"}
    other = build_checkpoints(
        _rehash_from(forked, 10, renumber=False),
        every=50,
        signer=signer,
        origin=ORIGIN,
        time_fn=_clock(),
    )
    report = verify_chain(entries, checkpoints=[*honest, other[0]], trusted=trusted)
    assert report.problem is Problem.INCONSISTENT_CHECKPOINT
    assert "tree_size 50" in report.message


def test_checkpoints_from_another_log_are_inconsistent(signed_log: SignedLog) -> None:
    signer = Ed25519Signer.generate()
    trusted = TrustedKeys.from_records([signer.public_record("audit")])
    entries = signed_log.entries[:20]
    ours = build_checkpoints(entries, every=10, signer=signer, origin=ORIGIN, time_fn=_clock())
    theirs = build_checkpoints(entries, every=10, signer=signer, origin="other", time_fn=_clock())
    report = verify_chain(entries, checkpoints=[ours[0], theirs[1]], trusted=trusted)
    assert report.problem is Problem.INCONSISTENT_CHECKPOINT


def test_checkpoints_need_trusted_keys() -> None:
    with pytest.raises(ValueError, match="trusted keys"):
        verify_chain([], require_sealed=True)


# --- signing checkpoints: append-only or nothing ---------------------------------------------


@pytest.fixture(scope="module")
def small_tree(signed_log: SignedLog) -> list[bytes]:
    return [leaf_hash(leaf_data(entry)) for entry in signed_log.entries[:300]]


def _checkpoint(hashes: list[bytes], size: int, *, origin: str = ORIGIN) -> Checkpoint:
    tree = CompactRange()
    for hash_of_leaf in hashes[:size]:
        tree.append(hash_of_leaf)
    return Checkpoint(
        origin=origin, tree_size=size, root_hash=tree.root().hex(), last_seq=size - 1, time="t"
    )


def test_sign_checkpoint_accepts_a_proven_extension(
    signed_log: SignedLog, small_tree: list[bytes]
) -> None:
    signer = Ed25519Signer.generate()
    old, new = _checkpoint(small_tree, 200), _checkpoint(small_tree, 300)
    proof = consistency_proof(small_tree, 200, 300)
    envelope = sign_checkpoint(new, signer, previous=old, consistency_proof=proof)
    trusted = TrustedKeys.from_records([signer.public_record("audit")])
    assert open_checkpoint(envelope, trusted) == new
    assert envelope.payload == jcs_bytes(new.to_json())
    same = sign_checkpoint(new, signer, previous=new, consistency_proof=None)
    assert open_checkpoint(same, trusted) == new


@pytest.mark.parametrize(
    ("case", "complaint"),
    [
        ("smaller", "smaller than the previous"),
        ("origin", "origin"),
        ("no-proof", "needs a consistency proof"),
        ("bad-proof", "consistency proof from 200 to 300 entries fails"),
        ("same-size-new-root", "already has root"),
    ],
)
def test_sign_checkpoint_refuses_a_rewritten_history(
    small_tree: list[bytes], case: str, complaint: str
) -> None:
    signer = Ed25519Signer.generate()
    old, new = _checkpoint(small_tree, 200), _checkpoint(small_tree, 300)
    proof = consistency_proof(small_tree, 200, 300)
    forked_tree = [*small_tree[:50], leaf_hash(b"forged"), *small_tree[51:]]
    forked = _checkpoint(forked_tree, 300)
    previous, current, given_proof = {
        "smaller": (new, old, proof),
        "origin": (old, _checkpoint(small_tree, 300, origin="elsewhere"), proof),
        "no-proof": (old, new, None),
        "bad-proof": (old, forked, consistency_proof(forked_tree, 200, 300)),
        "same-size-new-root": (new, forked, []),
    }[case]
    with pytest.raises(AuditIntegrityError, match=complaint):
        sign_checkpoint(current, signer, previous=previous, consistency_proof=given_proof)


def test_open_checkpoint_rejects_non_canonical_payloads(signed_log: SignedLog) -> None:
    signer = Ed25519Signer.generate()
    trusted = TrustedKeys.from_records([signer.public_record("audit")])
    checkpoint = open_checkpoint(signed_log.checkpoints[0], signed_log.trusted)
    from harness.integrity import sign_envelope
    from harness.integrity.checkpoint import PAYLOAD_TYPE

    spaced = (b'{"format_version": 1, ' + checkpoint.payload()[1:]).replace(b'" :', b'":')
    envelope = sign_envelope(PAYLOAD_TYPE, spaced, signer)
    with pytest.raises(AuditIntegrityError, match="canonical"):
        open_checkpoint(envelope, trusted)


# --- entries ---------------------------------------------------------------------------------


def test_entries_hash_their_jcs_body_and_link_to_the_previous(signed_log: SignedLog) -> None:
    first, second = signed_log.entries[:2]
    assert first["prev_hash"] == GENESIS_HASH
    assert second["prev_hash"] == first["entry_hash"]
    assert first["entry_hash"] == compute_entry_hash(entry_body(first))
    assert leaf_data(first) == jcs_bytes({k: v for k, v in first.items() if k != "entry_hash"})


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(payload=st.dictionaries(st.text(), _json_values, max_size=5), actor=st.text())
def test_leaf_data_is_exactly_jcs(payload: dict[str, Any], actor: str) -> None:
    """The fast canonical path agrees with RFC 8785 byte for byte, or fails as it does."""
    entry = {"seq": 0, "actor": actor, "payload": payload, "prev_hash": GENESIS_HASH}
    try:
        expected = jcs_bytes(entry)
    except ValueError:
        with pytest.raises(ValueError):
            leaf_data(entry)
        return
    assert leaf_data(entry) == expected
