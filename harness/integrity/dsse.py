"""DSSE envelopes (secure-systems-lab/dsse v1): PAE, the JSON envelope, signing and verifying.

A signature covers ``PAE(payloadType, payload)``, never the JSON around it. The ``keyid`` in
an envelope is an unauthenticated hint: verification tries every trusted key and reports the
key that actually verified.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import AuditIntegrityError
from harness.integrity.keys import PublicKeyRecord, Signer, TrustedKeys


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding of a payload type and body."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    """One signature in an envelope; ``keyid`` is a hint, not an identity."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: the payload bytes, their type, and signatures over their PAE."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The DSSE JSON envelope (standard base64 with padding)."""
        return {
            "payloadType": self.payload_type,
            "payload": _b64encode(self.payload),
            "signatures": [{"keyid": s.keyid, "sig": _b64encode(s.sig)} for s in self.signatures],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Envelope:
        """Parse a DSSE JSON envelope; standard and URL-safe base64, padded or not, are accepted."""
        if not isinstance(obj, Mapping):
            raise _malformed(f"expected a JSON object, got {type(obj).__name__}")
        payload_type = obj.get("payloadType")
        if not isinstance(payload_type, str):
            raise _malformed("'payloadType' must be a string")
        payload = _b64decode(obj.get("payload"), field="payload")
        raw_signatures = obj.get("signatures")
        if not isinstance(raw_signatures, list):
            raise _malformed("'signatures' must be a list")
        signatures = []
        for i, raw in enumerate(raw_signatures):
            if not isinstance(raw, Mapping):
                raise _malformed(f"signatures[{i}] must be an object")
            keyid = raw.get("keyid", "")
            if not isinstance(keyid, str):
                raise _malformed(f"signatures[{i}].keyid must be a string")
            signatures.append(
                Signature(keyid=keyid, sig=_b64decode(raw.get("sig"), field=f"signatures[{i}].sig"))
            )
        return cls(payload_type=payload_type, payload=payload, signatures=tuple(signatures))


@dataclass(frozen=True)
class VerifiedEnvelope:
    """An envelope's payload together with the trusted key that vouched for it."""

    payload_type: str
    payload: bytes
    key: PublicKeyRecord
    claimed_keyid: str

    @property
    def keyid(self) -> str:
        """The keyid of the key that verified (not necessarily the one the envelope claimed)."""
        return self.key.keyid


def sign_envelope(payload_type: str, payload: bytes, signer: Signer) -> Envelope:
    """Sign ``payload`` as ``payload_type`` and wrap it in an envelope."""
    signature = Signature(keyid=signer.keyid, sig=signer.sign(pae(payload_type, payload)))
    return Envelope(payload_type=payload_type, payload=payload, signatures=(signature,))


def verify_envelope(
    env: Envelope, trusted: TrustedKeys, *, payload_type: str | None = None
) -> VerifiedEnvelope:
    """The first signature that a trusted key verifies; ``AuditIntegrityError`` if none does.

    ``payload_type``, when given, is the only type accepted (DSSE: reject unsupported types).
    """
    if payload_type is not None and env.payload_type != payload_type:
        raise AuditIntegrityError(
            f"DSSE envelope has payloadType {env.payload_type!r}, expected {payload_type!r}",
            payload_type=env.payload_type,
        )
    if not env.signatures:
        raise AuditIntegrityError(
            f"DSSE envelope ({env.payload_type}) carries no signatures; sign it before trusting it",
            payload_type=env.payload_type,
        )
    if not len(trusted):
        raise AuditIntegrityError(
            "no trusted public keys are configured; add the signer's *.pub.json to the key "
            "directory (goldens/keys/) to verify signatures",
            payload_type=env.payload_type,
        )
    message = pae(env.payload_type, env.payload)
    for signature in env.signatures:
        record = trusted.verify(message, signature.sig, keyid_hint=signature.keyid)
        if record is not None:
            return VerifiedEnvelope(
                payload_type=env.payload_type,
                payload=env.payload,
                key=record,
                claimed_keyid=signature.keyid,
            )
    claimed = ", ".join(repr(s.keyid) for s in env.signatures)
    raise AuditIntegrityError(
        f"DSSE envelope ({env.payload_type}) is not signed by a trusted key: none of its "
        f"{len(env.signatures)} signature(s) (keyids claimed: {claimed}) verifies against the "
        f"{len(trusted)} trusted key(s) ({', '.join(trusted.names)}). The payload was altered "
        "or the signer is not trusted; if the signer is legitimate, add its public key to "
        "the trusted key directory",
        payload_type=env.payload_type,
        claimed_keyids=[s.keyid for s in env.signatures],
    )


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(value: object, *, field: str) -> bytes:
    if not isinstance(value, str):
        raise _malformed(f"{field!r} must be a base64 string")
    url_safe = "-" in value or "_" in value
    if url_safe and ("+" in value or "/" in value):
        raise _malformed(f"{field!r} mixes the standard and URL-safe base64 alphabets")
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_" if url_safe else None, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed(f"{field!r} is not valid base64: {exc}") from exc


def _malformed(reason: str) -> AuditIntegrityError:
    return AuditIntegrityError(f"malformed DSSE envelope: {reason}")
