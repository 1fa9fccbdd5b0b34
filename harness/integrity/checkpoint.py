"""Signed checkpoints: the audit log's tree size and Merkle root, signed as a DSSE envelope.

The payload is the JCS (RFC 8785) bytes of the checkpoint's JSON object, so any verifier
recomputes the same signed bytes. Signing refuses a checkpoint that does not extend the
previous one (append-only), so the service can never sign a rewritten history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.canonical import jcs_bytes
from harness.errors import AuditIntegrityError
from harness.integrity.dsse import Envelope, sign_envelope, verify_envelope
from harness.integrity.keys import Signer, TrustedKeys
from harness.integrity.merkle import verify_consistency

PAYLOAD_TYPE = "application/vnd.harness.audit-checkpoint+json"
CHECKPOINT_FORMAT_VERSION = 1

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Checkpoint:
    """The audit log at one moment: ``tree_size`` entries (seq 0..last_seq) under ``root_hash``."""

    origin: str
    tree_size: int
    root_hash: str
    last_seq: int
    time: str

    def __post_init__(self) -> None:
        if not self.origin:
            raise ValueError("a checkpoint needs an origin (which log it describes)")
        if isinstance(self.tree_size, bool) or self.tree_size < 0:
            raise ValueError(f"tree_size must be a non-negative int, got {self.tree_size!r}")
        if not _HEX64.fullmatch(self.root_hash):
            raise ValueError(f"root_hash must be 64 lower-case hex digits, got {self.root_hash!r}")
        if self.last_seq != self.tree_size - 1:
            raise ValueError(
                f"last_seq {self.last_seq} does not match tree_size {self.tree_size} "
                "(seqs are gapless from 0)"
            )

    @property
    def root_bytes(self) -> bytes:
        return bytes.fromhex(self.root_hash)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "last_seq": self.last_seq,
            "time": self.time,
        }

    def payload(self) -> bytes:
        """The exact bytes that are signed."""
        return jcs_bytes(self.to_json())

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Checkpoint:
        version = obj.get("format_version")
        if version != CHECKPOINT_FORMAT_VERSION:
            raise AuditIntegrityError(
                f"checkpoint format_version {version!r} is not supported (expected "
                f"{CHECKPOINT_FORMAT_VERSION}); upgrade the verifier or re-sign the checkpoint"
            )
        fields = {"origin": str, "tree_size": int, "root_hash": str, "last_seq": int, "time": str}
        for name, kind in fields.items():
            value = obj.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise AuditIntegrityError(f"checkpoint field {name!r} must be {kind.__name__}")
        try:
            return cls(
                origin=obj["origin"],
                tree_size=obj["tree_size"],
                root_hash=obj["root_hash"],
                last_seq=obj["last_seq"],
                time=obj["time"],
            )
        except ValueError as exc:
            raise AuditIntegrityError(f"invalid checkpoint: {exc}") from exc


def sign_checkpoint(
    cp: Checkpoint,
    signer: Signer,
    *,
    previous: Checkpoint | None,
    consistency_proof: list[bytes] | None,
) -> Envelope:
    """Sign ``cp``, refusing one that is not an append-only extension of ``previous``."""
    if previous is not None:
        _check_extends(previous, cp, consistency_proof)
    return sign_envelope(PAYLOAD_TYPE, cp.payload(), signer)


def open_checkpoint(envelope: Envelope, trusted: TrustedKeys) -> Checkpoint:
    """Verify the envelope against trusted keys and parse its checkpoint."""
    verified = verify_envelope(envelope, trusted, payload_type=PAYLOAD_TYPE)
    try:
        obj = json.loads(verified.payload)
    except ValueError as exc:
        raise AuditIntegrityError(f"signed checkpoint payload is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise AuditIntegrityError("signed checkpoint payload is not a JSON object")
    checkpoint = Checkpoint.from_json(obj)
    if checkpoint.payload() != verified.payload:
        # Only one byte string may stand for a checkpoint; anything else was not made here.
        raise AuditIntegrityError("signed checkpoint payload is not in canonical (JCS) form")
    return checkpoint


def _check_extends(
    previous: Checkpoint, cp: Checkpoint, consistency_proof: list[bytes] | None
) -> None:
    if cp.origin != previous.origin:
        raise AuditIntegrityError(
            f"refusing to sign: checkpoint origin {cp.origin!r} differs from the previous "
            f"checkpoint's {previous.origin!r}",
        )
    if cp.tree_size < previous.tree_size:
        raise AuditIntegrityError(
            f"refusing to sign: tree_size {cp.tree_size} is smaller than the previous "
            f"checkpoint's {previous.tree_size}; the audit log must only grow",
        )
    if cp.tree_size == previous.tree_size:
        if cp.root_hash != previous.root_hash:
            raise AuditIntegrityError(
                f"refusing to sign: tree_size {cp.tree_size} already has root "
                f"{previous.root_hash}, not {cp.root_hash}; the audit log was rewritten",
            )
        return
    if previous.tree_size == 0:
        return
    if consistency_proof is None:
        raise AuditIntegrityError(
            f"refusing to sign: growing from {previous.tree_size} to {cp.tree_size} entries "
            "needs a consistency proof against the previous checkpoint",
        )
    if not verify_consistency(
        previous.tree_size, cp.tree_size, previous.root_bytes, cp.root_bytes, consistency_proof
    ):
        raise AuditIntegrityError(
            f"refusing to sign: the consistency proof from {previous.tree_size} to "
            f"{cp.tree_size} entries fails; the first {previous.tree_size} entries changed "
            "since the previous checkpoint",
        )
