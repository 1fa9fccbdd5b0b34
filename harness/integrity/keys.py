"""Ed25519 keys: the ``Signer`` protocol, private-key files, and the trusted public-key set.

Public keys live in ``goldens/keys/*.pub.json``::

    {"format_version": 1, "name": "demo", "keyid": "ed25519:0123456789abcdef",
     "algorithm": "ed25519", "public_key": "<base64 of the raw 32 bytes>"}

Trust comes from that directory alone; a ``keyid`` is a label, recomputed from the key and
checked on load, never a reason to believe a signature.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.canonical import dumps_canonical, sha256_hex
from harness.errors import ConfigError

KEY_FORMAT_VERSION = 1
ALGORITHM = "ed25519"
PUBLIC_KEY_SUFFIX = ".pub.json"


class Signer(Protocol):
    """Anything that can sign bytes and names its key."""

    @property
    def keyid(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


def keyid_for(public_key: Ed25519PublicKey) -> str:
    """``ed25519:`` + the first 16 hex digits of SHA-256 over the raw public key."""
    return f"{ALGORITHM}:{sha256_hex(_raw_public(public_key))[:16]}"


class Ed25519Signer:
    """Signs with an in-memory Ed25519 private key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self._keyid = keyid_for(private_key.public_key())

    @classmethod
    def generate(cls) -> Ed25519Signer:
        """A fresh random key (tests, ``harness keys generate``)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> Ed25519Signer:
        """From the raw 32-byte Ed25519 seed."""
        if len(raw) != 32:
            raise ConfigError(f"an Ed25519 private key is 32 raw bytes, got {len(raw)}")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def from_pem(cls, pem: bytes) -> Ed25519Signer:
        """From an unencrypted PKCS#8 PEM private key."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"not an unencrypted PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"expected an Ed25519 private key, got {type(key).__name__}")
        return cls(key)

    @classmethod
    def from_pem_file(cls, path: str | os.PathLike[str]) -> Ed25519Signer:
        """From a PEM file such as the one ``write_private_key_pem`` writes."""
        return load_signer(path)

    @property
    def keyid(self) -> str:
        return self._keyid

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._private_key.public_key()

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self._private_key

    def public_record(self, name: str) -> PublicKeyRecord:
        """The record to publish in ``goldens/keys/`` for this key."""
        return PublicKeyRecord.from_public_key(name, self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self._private_key.sign(data)

    def __repr__(self) -> str:
        return f"Ed25519Signer(keyid={self._keyid!r})"


@dataclass(frozen=True)
class PublicKeyRecord:
    """One trusted public key: a human name, its keyid, and the key."""

    name: str
    keyid: str
    public_key: Ed25519PublicKey

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> PublicKeyRecord:
        return cls(name=name, keyid=keyid_for(public_key), public_key=public_key)

    def verify(self, data: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's signature over ``data``."""
        try:
            self.public_key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        """The ``*.pub.json`` document."""
        return {
            "format_version": KEY_FORMAT_VERSION,
            "name": self.name,
            "keyid": self.keyid,
            "algorithm": ALGORITHM,
            "public_key": base64.b64encode(_raw_public(self.public_key)).decode("ascii"),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, source: str = "public key") -> PublicKeyRecord:
        """Parse and check a ``*.pub.json`` document; ``source`` names it in errors."""
        version = obj.get("format_version")
        if version != KEY_FORMAT_VERSION:
            raise ConfigError(
                f"{source}: format_version {version!r} is not supported (expected "
                f"{KEY_FORMAT_VERSION}); re-export the key with this harness version"
            )
        if obj.get("algorithm") != ALGORITHM:
            raise ConfigError(f"{source}: algorithm {obj.get('algorithm')!r} is not {ALGORITHM!r}")
        name, keyid, encoded = obj.get("name"), obj.get("keyid"), obj.get("public_key")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{source}: 'name' must be a non-empty string")
        if not isinstance(encoded, str):
            raise ConfigError(f"{source}: 'public_key' must be a base64 string")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ConfigError(f"{source}: 'public_key' is not valid base64: {exc}") from exc
        if len(raw) != 32:
            raise ConfigError(f"{source}: an Ed25519 public key is 32 bytes, got {len(raw)}")
        record = cls.from_public_key(name, Ed25519PublicKey.from_public_bytes(raw))
        if keyid != record.keyid:
            raise ConfigError(
                f"{source}: keyid {keyid!r} does not match the key (it is {record.keyid!r}); "
                "fix the file rather than trusting the label"
            )
        return record


class TrustedKeys:
    """The set of public keys whose signatures we believe."""

    def __init__(self, records: Iterable[PublicKeyRecord] = ()) -> None:
        by_keyid: dict[str, PublicKeyRecord] = {}
        for record in records:
            # keyid is derived from the key, so equal keyids are the same key listed twice.
            by_keyid.setdefault(record.keyid, record)
        self._records = by_keyid

    @classmethod
    def from_records(cls, records: Iterable[PublicKeyRecord]) -> TrustedKeys:
        return cls(records)

    @classmethod
    def load_dir(cls, path: str | os.PathLike[str]) -> TrustedKeys:
        """Every ``*.pub.json`` in ``path`` (not recursive)."""
        directory = Path(path)
        if not directory.is_dir():
            raise ConfigError(f"trusted key directory {directory} does not exist")
        return cls(
            load_public_key(file) for file in sorted(directory.glob(f"*{PUBLIC_KEY_SUFFIX}"))
        )

    def verify(
        self, data: bytes, signature: bytes, *, keyid_hint: str | None = None
    ) -> PublicKeyRecord | None:
        """The trusted key that made ``signature`` over ``data``, or None.

        ``keyid_hint`` only decides which key is tried first; every trusted key is tried.
        """
        hinted = self._records.get(keyid_hint) if keyid_hint else None
        candidates = [hinted] if hinted else []
        candidates += [r for r in self._records.values() if r is not hinted]
        for record in candidates:
            if record.verify(data, signature):
                return record
        return None

    @property
    def names(self) -> list[str]:
        return [record.name for record in self._records.values()]

    def __iter__(self) -> Iterator[PublicKeyRecord]:
        return iter(self._records.values())

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, keyid: object) -> bool:
        return keyid in self._records

    def __repr__(self) -> str:
        return f"TrustedKeys({sorted(self._records)})"


def load_public_key(path: str | os.PathLike[str]) -> PublicKeyRecord:
    """Read one ``*.pub.json`` file."""
    file = Path(path)
    try:
        obj = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read public key {file}: {exc}") from exc
    if not isinstance(obj, dict):
        raise ConfigError(f"{file}: expected a JSON object")
    return PublicKeyRecord.from_json(obj, source=str(file))


def write_public_key(path: str | os.PathLike[str], record: PublicKeyRecord) -> None:
    """Write a ``*.pub.json`` file (canonical pretty JSON)."""
    Path(path).write_text(dumps_canonical(record.to_json()), encoding="utf-8")


def write_private_key_pem(
    path: str | os.PathLike[str], key: Ed25519PrivateKey, *, overwrite: bool = False
) -> None:
    """Write an unencrypted PKCS#8 PEM readable only by its owner (0600)."""
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        # Created 0600 from the start, so the key is never briefly world-readable.
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{path} already exists; refusing to overwrite a private key") from exc
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(pem)


def load_signer(path: str | os.PathLike[str]) -> Ed25519Signer:
    """Load an Ed25519 private key PEM file as a signer."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read private key {path}: {exc}") from exc
    try:
        return Ed25519Signer.from_pem(pem)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from exc


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )
