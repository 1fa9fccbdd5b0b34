"""The CLI's view of the approver's signing key: loaded only when something is signed.

Viewing and rejecting pending updates never needs a private key; accepting and recording
do. The approver's name defaults to the name on the signing key's public record.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import HarnessError
from harness.integrity import Ed25519Signer
from replay.signing import APPROVER_ENV, SIGNING_KEY_ENV, resolve_approver, signer_from_env
from replay.store import GoldenStore


class LazySigner:
    """A ``Signer`` that reads ``HARNESS_SIGNING_KEY`` on first use (``SignatureError`` if unusable)."""

    def __init__(self) -> None:
        self._signer: Ed25519Signer | None = None

    def _loaded(self) -> Ed25519Signer:
        if self._signer is None:
            self._signer = signer_from_env()
        return self._signer

    @property
    def keyid(self) -> str:
        return self._loaded().keyid

    def sign(self, data: bytes) -> bytes:
        return self._loaded().sign(data)


def default_approver(explicit: str | None, store: GoldenStore) -> str:
    """``explicit``, else ``HARNESS_APPROVER``, else the signing key's name, else git/OS user."""
    if (explicit and explicit.strip()) or os.environ.get(APPROVER_ENV, "").strip():
        return resolve_approver(explicit)
    name = signing_key_name(store)
    return name if name else resolve_approver(explicit)


def signing_key_name(store: GoldenStore) -> str | None:
    """The name on the public record of ``HARNESS_SIGNING_KEY`` (beside it or in goldens/keys/)."""
    path = os.environ.get(SIGNING_KEY_ENV)
    if not path:
        return None
    from harness.integrity import load_public_key, load_signer

    try:
        keyid = load_signer(path).keyid
    except HarnessError:
        return None  # an unusable key is reported when it is used to sign, not here
    sibling = Path(path).with_suffix(".pub.json")
    for folder, pattern in ((sibling.parent, sibling.name), (store.keys_dir, "*.pub.json")):
        if not folder.is_dir():
            continue
        for candidate in sorted(folder.glob(pattern)):
            try:
                record = load_public_key(candidate)
            except (HarnessError, OSError, ValueError):
                continue  # a stray or foreign file in the folder is not our business here
            if record.keyid == keyid:
                return record.name
    return None
