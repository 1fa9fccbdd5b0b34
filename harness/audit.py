"""The runtime audit log: append-only rows, hash-chained, with signed Merkle checkpoints.

Every append locks the single ``audit_head`` row, so the chain is gapless even with many
writers on PostgreSQL; it runs inside the caller's unit of work, so an action and its audit
entry commit or roll back together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from harness.clock import iso
from harness.database.models import AuditCheckpoint, AuditEntry, AuditHead
from harness.events import AuditAppended
from harness.integrity import chain as audit_chain
from harness.observability import AUDIT_ENTRIES
from harness.redaction import redact, redact_data
from harness.runtime import Runtime


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
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
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
    if rt.audit_signer is not None and head.next_seq % rt.settings.audit_checkpoint_every == 0:
        _checkpoint(session, rt, tree_size=head.next_seq)
    return row


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


def load_entries(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()
    return [entry_dict(r) for r in rows]


def _checkpoint(session: Session, rt: Runtime, *, tree_size: int) -> None:
    from harness.integrity import Checkpoint, Envelope, merkle, sign_checkpoint

    signer = rt.audit_signer
    assert signer is not None  # checked by the caller
    entries = load_entries(session)[:tree_size]
    leaf_hashes = [merkle.leaf_hash(audit_chain.leaf_data(e)) for e in entries]
    root = merkle.root_from_leaf_hashes(leaf_hashes)
    previous_row = session.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
    ).scalar_one_or_none()
    previous = (
        Checkpoint.from_json(json.loads(Envelope.from_json(previous_row.envelope).payload))
        if previous_row
        else None
    )
    proof = merkle.consistency_proof(leaf_hashes, previous.tree_size, tree_size) if previous else None
    cp = Checkpoint(
        origin=rt.settings.audit_origin,
        tree_size=tree_size,
        root_hash=root.hex(),
        last_seq=tree_size - 1,
        time=iso(rt.clock.now()),
    )
    envelope = sign_checkpoint(cp, signer, previous=previous, consistency_proof=proof)
    session.add(
        AuditCheckpoint(
            tree_size=tree_size,
            root_hash=root.hex(),
            envelope=envelope.to_json(),
            created_at=cp.time,
        )
    )


def verify_log(rt: Runtime, *, trusted_dir: Path | None = None) -> audit_chain.ChainReport:
    """Verify the stored log: chain, and (with trusted keys) every signed checkpoint."""
    from harness.database.connect import unit_of_work
    from harness.integrity import Envelope, TrustedKeys

    with unit_of_work(rt.sessions) as session:
        entries = load_entries(session)
        envelopes = [
            Envelope.from_json(row.envelope)
            for row in session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size)).scalars()
        ]
    trusted = TrustedKeys.load_dir(trusted_dir) if trusted_dir is not None else None
    return audit_chain.verify_chain(entries, checkpoints=envelopes if trusted else (), trusted=trusted)
