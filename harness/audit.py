"""The runtime audit log: append-only rows, hash-chained, with signed Merkle checkpoints.

Every append locks the single ``audit_head`` row, so the chain is gapless even with many
writers on PostgreSQL; it runs inside the caller's unit of work, so an action and its audit
entry commit or roll back together. With a signing key, every ``audit_checkpoint_every``-th
append also signs a checkpoint (tree size + Merkle root) in that same transaction, and
``seal`` signs one covering the whole log. The signer only signs a tree that extends the last
checkpoint it signed itself (a consistency proof), so it never vouches for a rewritten history;
if the stored log no longer matches, the append fails with ``AuditIntegrityError``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from harness.clock import iso
from harness.database.models import AuditCheckpoint, AuditEntry, AuditHead
from harness.errors import AuditIntegrityError, ConfigError, InvalidRequest
from harness.events import AuditAppended
from harness.integrity import chain as audit_chain
from harness.integrity import merkle
from harness.integrity.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from harness.integrity.dsse import Envelope
from harness.integrity.keys import Ed25519Signer, Signer, TrustedKeys
from harness.observability import AUDIT_ENTRIES
from harness.redaction import redact, redact_data
from harness.runtime import Runtime

_ENTRY_FIELDS = ("seq", "at", "actor", "tenant", "action", "target", "payload", "prev_hash", "entry_hash")
# Plain SQL with no result types: SQLAlchemy's per-row JSON and Row processing was ~3x the
# cost of the hashing when verifying 100k entries; the payload is decoded here instead.
_NO_LIMIT = 2**31 - 1  # seq is a 32-bit INTEGER column on PostgreSQL
_SELECT_ENTRIES = text(
    "SELECT seq, at, actor, tenant, action, target, payload, prev_hash, entry_hash "
    "FROM audit_entries WHERE seq >= :start AND seq < :stop ORDER BY seq"
)


def append_audit(
    session: Session,
    rt: Runtime,
    *,
    actor: str,
    tenant: str,
    action: str,
    target: str,
    payload: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction; payload and fields pass the redactor."""
    head = _lock_head(session)
    entry = audit_chain.make_entry(
        seq=head.next_seq,
        prev_hash=head.last_hash,
        at=iso(rt.clock.now()),
        actor=actor,
        tenant=tenant,
        action=action,
        target=redact(target),
        payload=redact_data(payload or {}),
    )
    row = AuditEntry(**entry)
    session.add(row)
    head.next_seq = entry["seq"] + 1
    head.last_hash = entry["entry_hash"]
    session.flush()
    AUDIT_ENTRIES.inc()
    rt.sink.emit(AuditAppended(seq=row.seq, action=action, target=row.target))
    if rt.audit_signer is not None and (
        head.next_seq % rt.settings.audit_checkpoint_every == 0 or _checkpoint_overdue(session, rt)
    ):
        _checkpoint(session, rt, tree_size=head.next_seq)
    return row


def _checkpoint_overdue(session: Session, rt: Runtime) -> bool:
    """True when the newest checkpoint (or, with none, the first entry) is older than the interval."""
    interval = rt.settings.audit_checkpoint_seconds
    if interval is None:
        return False
    assert rt.audit_signer is not None  # checked by the caller
    # Our own last signed checkpoint, never whatever row is newest: rows are insertable, and a
    # forged one must neither postpone checkpoints nor break appends with a bad timestamp.
    own = _last_signed_by(session, rt.audit_signer)
    last = own.time if own is not None else None
    if last is None:
        last = session.execute(select(AuditEntry.at).where(AuditEntry.seq == 0)).scalar_one_or_none()
    if last is None:
        return False
    try:
        age = rt.clock.now() - datetime.fromisoformat(last)
    except (TypeError, ValueError):
        return False  # an unreadable time never blocks an append; the count trigger still applies
    return age.total_seconds() >= interval


def seal(session: Session, rt: Runtime) -> AuditCheckpoint | None:
    """Sign a checkpoint covering every entry so far (None for an empty log); idempotent."""
    if rt.audit_signer is None:
        raise ConfigError(
            "sealing the audit log needs the service's signing key: set "
            "HARNESS_AUDIT_SIGNING_KEY to an Ed25519 private key PEM file"
        )
    head = _lock_head(session)
    if head.next_seq == 0:
        return None
    existing = session.get(AuditCheckpoint, head.next_seq)
    if existing is not None:
        return existing
    return _checkpoint(session, rt, tree_size=head.next_seq)


def entry_dict(row: AuditEntry) -> dict[str, Any]:
    """The canonical dict form of a stored entry (what audit.jsonl and the chain verifier see)."""
    return {
        "seq": row.seq,
        "at": row.at,
        "actor": row.actor,
        "tenant": row.tenant,
        "action": row.action,
        "target": row.target,
        "payload": row.payload,
        "prev_hash": row.prev_hash,
        "entry_hash": row.entry_hash,
    }


def load_entries(session: Session, *, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
    """Stored entries with ``start <= seq < stop`` in seq order, in ``entry_dict`` form."""
    session.flush()
    limit = stop if stop is not None else _NO_LIMIT
    fields = _ENTRY_FIELDS
    entries = []
    for row in session.execute(_SELECT_ENTRIES, {"start": start, "stop": limit}):
        entry = dict(zip(fields, row, strict=True))
        if isinstance(entry["payload"], str):  # SQLite hands back JSON text; psycopg decodes it
            entry["payload"] = json.loads(entry["payload"])
        entries.append(entry)
    return entries


@dataclass(frozen=True)
class StoredCheckpoint:
    """One row of ``audit_checkpoints`` as stored; nothing here is verified."""

    tree_size: int
    root_hash: str
    created_at: str
    keyids: tuple[str, ...]


def list_checkpoints(session: Session) -> list[StoredCheckpoint]:
    """Every stored checkpoint, smallest tree first, with the keyids its envelope claims."""
    rows = session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size)).scalars()
    listed = []
    for row in rows:
        signatures = row.envelope.get("signatures") if isinstance(row.envelope, dict) else None
        keyids = tuple(str(s.get("keyid", "")) for s in signatures or [] if isinstance(s, dict))
        listed.append(StoredCheckpoint(row.tree_size, row.root_hash, row.created_at, keyids))
    return listed


def verify_log(
    rt: Runtime,
    *,
    trusted_dir: Path | None = None,
    require_sealed: bool = False,
    from_checkpoint: int | None = None,
) -> audit_chain.ChainReport:
    """Verify the stored log: the chain, and (with trusted keys) every signed checkpoint.

    ``from_checkpoint=N`` trusts the signed checkpoint whose tree_size is N as the base: the
    entries before it are only hashed into a Merkle tree whose root must equal that signed
    root (which pins every one of them), and the chain checks and later roots run from seq N.
    If anything looks wrong the whole log is verified from seq 0 instead, so the report names
    the first bad seq exactly as a full verification would.
    """
    from harness.database.connect import unit_of_work

    if (require_sealed or from_checkpoint is not None) and trusted_dir is None:
        raise ConfigError(
            "require_sealed and from_checkpoint rely on signed checkpoints: pass the directory "
            "of trusted *.pub.json keys (--trusted-keys)"
        )
    trusted = _load_trusted(trusted_dir)
    with unit_of_work(rt.sessions) as session:
        # Checkpoints first: every one read then covers entries that are already committed.
        stored = session.execute(
            select(AuditCheckpoint.tree_size, AuditCheckpoint.envelope).order_by(AuditCheckpoint.tree_size)
        ).all()
        entries = load_entries(session)
    if trusted is None:
        return audit_chain.verify_chain(entries)
    envelopes: list[Envelope] = []
    for tree_size, raw in stored:
        try:
            envelopes.append(Envelope.from_json(raw))
        except AuditIntegrityError as exc:
            message = f"the stored checkpoint at tree_size {tree_size} is unreadable: {exc.message}"
            return _bad(len(entries), audit_chain.Problem.BAD_SIGNATURE, message)
    if from_checkpoint is not None:
        resumed = _verify_from_checkpoint(
            entries, envelopes, trusted, base_size=from_checkpoint, require_sealed=require_sealed
        )
        if resumed is not None:
            return resumed
    return audit_chain.verify_chain(
        entries, checkpoints=envelopes, trusted=trusted, require_sealed=require_sealed
    )


def _lock_head(session: Session) -> AuditHead:
    return session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()


def _load_trusted(trusted_dir: Path | None) -> TrustedKeys | None:
    if trusted_dir is None:
        return None
    trusted = TrustedKeys.load_dir(trusted_dir)
    if not len(trusted):
        raise ConfigError(
            f"no *.pub.json keys in {trusted_dir}: add the audit service's public key there "
            "(an empty trust set would verify no signature)"
        )
    return trusted


def _bad(count: int, problem: audit_chain.Problem, message: str) -> audit_chain.ChainReport:
    return audit_chain.ChainReport(
        ok=False, entries=count, first_bad_seq=None, problem=problem, message=message, checkpoints_verified=0
    )


# ---------------------------------------------------------------------------------------------
# Signing checkpoints incrementally.
#
# Extending a signed tree of size m to size n needs only the perfect subtrees that make up
# [0, m) (its "frontier", O(log m) hashes) and the leaves [m, n): every node of the new root
# and of the RFC 6962 consistency proof is one or the other. Each runtime remembers the
# frontier of the last checkpoint it signed (``Runtime.audit_frontier``; ``merkle.Frontier``
# and ``merkle.ExtendedTree`` do the tree work); it is used only when its root equals the root of
# the checkpoint being extended, so a stale cache (another process signed, a transaction rolled
# back) costs one full re-read of the log, never a wrong signature.


def _checkpoint(session: Session, rt: Runtime, *, tree_size: int) -> AuditCheckpoint:
    signer = rt.audit_signer
    assert signer is not None  # checked by the callers
    previous = _last_signed_by(session, signer)
    base = rt.audit_frontier or merkle.EMPTY_FRONTIER
    if previous is None or base.size != previous.tree_size or base.root() != previous.root_bytes:
        base = merkle.EMPTY_FRONTIER  # cold or stale: rebuild from every stored leaf
    entries = load_entries(session, start=base.size, stop=tree_size)
    if len(entries) != tree_size - base.size:
        raise AuditIntegrityError(
            f"refusing to sign: audit entries seq {base.size}..{tree_size - 1} should be "
            f"{tree_size - base.size} rows but the database holds {len(entries)}; rows were "
            "deleted. Run `harness audit verify` to locate the damage",
        )
    tree = merkle.ExtendedTree(base, [merkle.leaf_hash(audit_chain.leaf_data(e)) for e in entries])
    root = tree.root()
    checkpoint = Checkpoint(
        origin=rt.settings.audit_origin,
        tree_size=tree_size,
        root_hash=root.hex(),
        last_seq=tree_size - 1,
        time=iso(rt.clock.now()),
    )
    proof = tree.consistency_proof(previous.tree_size) if previous is not None else None
    envelope = sign_checkpoint(checkpoint, signer, previous=previous, consistency_proof=proof)
    row = AuditCheckpoint(
        tree_size=tree_size, root_hash=root.hex(), envelope=envelope.to_json(), created_at=checkpoint.time
    )
    session.add(row)
    rt.audit_frontier = tree.frontier()
    return row


def _last_signed_by(session: Session, signer: Signer) -> Checkpoint | None:
    """The largest stored checkpoint this signer made (any stored one if it cannot tell).

    Rows are insertable, so a forged "previous" checkpoint must not become the baseline the
    signer extends; checkpoints under an earlier key are not this signer's history either.
    """
    rows = session.execute(
        select(AuditCheckpoint.envelope).order_by(AuditCheckpoint.tree_size.desc())
    ).scalars()
    if not isinstance(signer, Ed25519Signer):
        first = next(iter(rows), None)
        if first is None:
            return None
        return Checkpoint.from_json(json.loads(Envelope.from_json(first).payload))
    own = TrustedKeys.from_records([signer.public_record("audit-service")])
    for raw in rows:
        try:
            return open_checkpoint(Envelope.from_json(raw), own)
        except AuditIntegrityError:
            continue
    return None


# ---------------------------------------------------------------------------------------------
# Resuming verification from a trusted checkpoint.


def _verify_from_checkpoint(
    entries: Sequence[dict[str, Any]],
    envelopes: Sequence[Envelope],
    trusted: TrustedKeys,
    *,
    base_size: int,
    require_sealed: bool,
) -> audit_chain.ChainReport | None:
    """An ok report when the log checks out from the base on, else None (verify it all)."""
    opened = _open_all(envelopes, trusted)
    if opened is None:
        return None
    base = opened.get(base_size)
    if base is None:
        sizes = ", ".join(str(s) for s in sorted(opened)) or "none"
        raise InvalidRequest(
            f"no signed checkpoint has tree_size {base_size} (signed sizes: {sizes}); "
            "`harness audit checkpoints` lists them"
        )
    later = [opened[size] for size in sorted(opened) if size > base_size]
    try:
        verified = _check_from(entries, base, later)
    except (KeyError, TypeError, ValueError):
        return None  # not even canonical JSON; the full verifier says which entry
    sealed = later[-1].tree_size if later else base_size
    if verified is None or (require_sealed and sealed < len(entries)):
        return None
    count = len(entries)
    return audit_chain.ChainReport(
        ok=True,
        entries=count,
        first_bad_seq=None,
        problem=None,
        message=(
            f"audit log verified from the signed checkpoint at tree_size {base_size}: "
            f"{count} entries, {count - base_size} checked link by link, "
            f"{verified} signed checkpoint root(s) matched"
        ),
        checkpoints_verified=verified,
    )


def _open_all(envelopes: Sequence[Envelope], trusted: TrustedKeys) -> dict[int, Checkpoint] | None:
    """Every checkpoint by tree_size, or None if any is unsigned, forked or from another log."""
    opened: dict[int, Checkpoint] = {}
    for envelope in envelopes:
        try:
            checkpoint = open_checkpoint(envelope, trusted)
        except AuditIntegrityError:
            return None
        if opened.setdefault(checkpoint.tree_size, checkpoint).root_hash != checkpoint.root_hash:
            return None
    return opened if len({c.origin for c in opened.values()}) <= 1 else None


def _check_from(
    entries: Sequence[dict[str, Any]], base: Checkpoint, later: Sequence[Checkpoint]
) -> int | None:
    """How many signed roots matched, hashing ``[0, base)`` and checking links after it."""
    size = base.tree_size
    if len(entries) < size or entries[size - 1].get("seq") != size - 1:
        return None
    tree = merkle.CompactRange()
    prev_hash = audit_chain.GENESIS_HASH
    for entry in entries[:size]:
        data = audit_chain.leaf_data(entry)
        tree.append(merkle.leaf_hash(data))
        # The link into seq N comes from the signed leaf N-1, not from a stored column.
        prev_hash = hashlib.sha256(data).hexdigest()
    if tree.root() != base.root_bytes:
        return None
    verified, pending = 1, iter(later)
    due = next(pending, None)
    for i in range(size, len(entries)):
        entry = entries[i]
        if entry.get("seq") != i or entry.get("prev_hash") != prev_hash:
            return None
        data = audit_chain.leaf_data(entry)
        prev_hash = hashlib.sha256(data).hexdigest()
        if prev_hash != entry.get("entry_hash"):
            return None
        tree.append(merkle.leaf_hash(data))
        if due is not None and due.tree_size == tree.size:
            if tree.root() != due.root_bytes:
                return None
            verified += 1
            due = next(pending, None)
    # A signed checkpoint beyond the end means entries were removed.
    return verified if due is None else None
