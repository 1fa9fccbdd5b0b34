"""DSSE envelopes and Ed25519 keys: the PAE vector, both base64 alphabets, trust from keys only."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

import harness.integrity
from harness.canonical import sha256_hex
from harness.errors import AuditIntegrityError, ConfigError
from harness.integrity import (
    Ed25519Signer,
    Envelope,
    PublicKeyRecord,
    Signature,
    TrustedKeys,
    keyid_for,
    load_public_key,
    load_signer,
    pae,
    sign_envelope,
    verify_envelope,
    write_private_key_pem,
    write_public_key,
)

pytestmark = pytest.mark.tier0

HELLO_TYPE = "http://example.com/HelloWorld"
# Bytes whose base64 uses both alphabet-specific characters: "+/+/" vs "-_-_".
AWKWARD = bytes.fromhex("fbfffbff")


@pytest.fixture(scope="module")
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate()


@pytest.fixture(scope="module")
def trusted(signer: Ed25519Signer) -> TrustedKeys:
    return TrustedKeys.from_records([signer.public_record("audit-service")])


def test_exported_names_are_pinned() -> None:
    assert sorted(harness.integrity.__all__) == [
        "ChainReport",
        "Checkpoint",
        "CompactRange",
        "EMPTY_ROOT",
        "ENTRY_FIELDS",
        "Ed25519Signer",
        "Envelope",
        "GENESIS_HASH",
        "PAYLOAD_TYPE",
        "Problem",
        "PublicKeyRecord",
        "Signature",
        "Signer",
        "TrustedKeys",
        "VerifiedEnvelope",
        "build_checkpoints",
        "compute_entry_hash",
        "consistency_proof",
        "entry_body",
        "inclusion_proof",
        "keyid_for",
        "leaf_data",
        "leaf_hash",
        "load_public_key",
        "load_signer",
        "make_entry",
        "next_entry",
        "node_hash",
        "open_checkpoint",
        "pae",
        "root",
        "root_from_leaf_hashes",
        "sign_checkpoint",
        "sign_envelope",
        "verify_chain",
        "verify_consistency",
        "verify_envelope",
        "verify_inclusion",
        "write_private_key_pem",
        "write_public_key",
    ]


# --- PAE -------------------------------------------------------------------------------------


def test_pae_matches_the_dsse_protocol_vector() -> None:
    assert (
        pae(HELLO_TYPE, b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("é", b"") == b"DSSEv1 2 \xc3\xa9 0 "
    assert pae("", b"\x00 ") == b"DSSEv1 0  2 \x00 "


def test_pae_interoperates_with_the_reference_signature() -> None:
    """The protocol.md envelope (ECDSA P-256, raw r||s) verifies over our PAE bytes."""
    envelope = Envelope.from_json(
        {
            "payload": "aGVsbG8gd29ybGQ=",
            "payloadType": HELLO_TYPE,
            "signatures": [
                {
                    "sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJ"
                    "PcIAriEGAHTVeCUjW2JIZA=="
                }
            ],
        }
    )
    assert envelope.payload == b"hello world"
    assert envelope.signatures[0].keyid == ""
    public_key = ec.EllipticCurvePublicNumbers(
        46950820868899156662930047687818585632848591499744589407958293238635476079160,
        5640078356564379163099075877009565129882514886557779369047442380624545832820,
        ec.SECP256R1(),
    ).public_key()
    raw = envelope.signatures[0].sig
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key.verify(der, pae(envelope.payload_type, envelope.payload), ec.ECDSA(hashes.SHA256()))


# --- envelope JSON ---------------------------------------------------------------------------


def test_envelope_json_round_trips_with_standard_base64(signer: Ed25519Signer) -> None:
    envelope = sign_envelope("application/x-test", AWKWARD, signer)
    document = envelope.to_json()
    assert document["payload"] == "+//7/w=="
    assert set(document) == {"payloadType", "payload", "signatures"}
    assert document["signatures"][0]["keyid"] == signer.keyid
    assert Envelope.from_json(json.loads(json.dumps(document))) == envelope


@pytest.mark.parametrize("encoded", ["+//7/w==", "+//7/w", "-__7_w==", "-__7_w"])
def test_both_base64_alphabets_with_or_without_padding(
    encoded: str, signer: Ed25519Signer, trusted: TrustedKeys
) -> None:
    signed = sign_envelope("application/x-test", AWKWARD, signer)
    sig = signed.signatures[0].sig
    sig_text = base64.b64encode(sig).decode()
    if "-" in encoded:
        sig_text = base64.urlsafe_b64encode(sig).decode()
    if not encoded.endswith("="):
        sig_text = sig_text.rstrip("=")
    envelope = Envelope.from_json(
        {
            "payloadType": "application/x-test",
            "payload": encoded,
            "signatures": [{"keyid": signer.keyid, "sig": sig_text}],
        }
    )
    assert envelope.payload == AWKWARD
    assert verify_envelope(envelope, trusted).payload == AWKWARD


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({"payload": "", "signatures": []}, "payloadType"),
        ({"payloadType": "t", "payload": "+/-_", "signatures": []}, "mixes"),
        ({"payloadType": "t", "payload": "a", "signatures": []}, "not valid base64"),
        ({"payloadType": "t", "payload": "ab!c", "signatures": []}, "not valid base64"),
        ({"payloadType": "t", "payload": 12, "signatures": []}, "base64 string"),
        ({"payloadType": "t", "payload": ""}, "signatures"),
        ({"payloadType": "t", "payload": "", "signatures": ["x"]}, r"signatures\[0\]"),
        ({"payloadType": "t", "payload": "", "signatures": [{"sig": "%%"}]}, "sig"),
        ({"payloadType": "t", "payload": "", "signatures": [{"keyid": 1, "sig": ""}]}, "keyid"),
    ],
)
def test_malformed_envelopes_are_rejected(document: dict[str, object], complaint: str) -> None:
    with pytest.raises(AuditIntegrityError, match=complaint):
        Envelope.from_json(document)


# --- verification: trust comes from keys, never from keyid ------------------------------------


def test_signed_envelope_verifies_and_names_the_key(
    signer: Ed25519Signer, trusted: TrustedKeys
) -> None:
    verified = verify_envelope(sign_envelope("application/x-test", b"{}", signer), trusted)
    assert verified.key.name == "audit-service"
    assert verified.keyid == signer.keyid == verified.claimed_keyid
    assert verified.payload == b"{}"


@pytest.mark.parametrize("part", ["payload", "payload_type", "signature"])
def test_any_tampering_is_rejected(part: str, signer: Ed25519Signer, trusted: TrustedKeys) -> None:
    envelope = sign_envelope("application/x-test", b'{"n":1}', signer)
    sig = envelope.signatures[0]
    tampered = {
        "payload": Envelope(envelope.payload_type, b'{"n":2}', envelope.signatures),
        "payload_type": Envelope("application/x-other", envelope.payload, envelope.signatures),
        "signature": Envelope(
            envelope.payload_type,
            envelope.payload,
            (Signature(sig.keyid, bytes([sig.sig[0] ^ 1]) + sig.sig[1:]),),
        ),
    }[part]
    with pytest.raises(AuditIntegrityError, match="not signed by a trusted key"):
        verify_envelope(tampered, trusted)


def test_untrusted_signer_is_rejected(trusted: TrustedKeys) -> None:
    stranger = Ed25519Signer.generate()
    with pytest.raises(AuditIntegrityError, match=r"audit-service") as caught:
        verify_envelope(sign_envelope("application/x-test", b"{}", stranger), trusted)
    assert stranger.keyid in caught.value.message


def test_keyid_naming_a_trusted_key_does_not_lend_trust(
    signer: Ed25519Signer, trusted: TrustedKeys
) -> None:
    forged = sign_envelope("application/x-test", b"{}", Ed25519Signer.generate())
    relabelled = Envelope(
        forged.payload_type, forged.payload, (Signature(signer.keyid, forged.signatures[0].sig),)
    )
    with pytest.raises(AuditIntegrityError, match="not signed by a trusted key"):
        verify_envelope(relabelled, trusted)


def test_keyid_is_only_a_hint_every_trusted_key_is_tried(signer: Ed25519Signer) -> None:
    other = Ed25519Signer.generate()
    keys = TrustedKeys.from_records([other.public_record("other"), signer.public_record("audit")])
    envelope = sign_envelope("application/x-test", b"{}", signer)
    relabelled = Envelope(
        envelope.payload_type,
        envelope.payload,
        (Signature(other.keyid, envelope.signatures[0].sig),),
    )
    verified = verify_envelope(relabelled, keys)
    assert verified.key.name == "audit"
    assert verified.claimed_keyid == other.keyid != verified.keyid


def test_one_trusted_signature_among_several_is_enough(
    signer: Ed25519Signer, trusted: TrustedKeys
) -> None:
    good = sign_envelope("application/x-test", b"{}", signer).signatures[0]
    bad = sign_envelope("application/x-test", b"{}", Ed25519Signer.generate()).signatures[0]
    verified = verify_envelope(Envelope("application/x-test", b"{}", (bad, good)), trusted)
    assert verified.keyid == signer.keyid


def test_unsigned_envelope_and_empty_trust_are_rejected(
    signer: Ed25519Signer, trusted: TrustedKeys
) -> None:
    with pytest.raises(AuditIntegrityError, match="no signatures"):
        verify_envelope(Envelope("application/x-test", b"{}"), trusted)
    with pytest.raises(AuditIntegrityError, match="no trusted public keys"):
        verify_envelope(sign_envelope("application/x-test", b"{}", signer), TrustedKeys())


def test_unexpected_payload_type_is_rejected(signer: Ed25519Signer, trusted: TrustedKeys) -> None:
    envelope = sign_envelope("application/x-test", b"{}", signer)
    with pytest.raises(AuditIntegrityError, match="expected 'application/x-other'"):
        verify_envelope(envelope, trusted, payload_type="application/x-other")


# --- keys ------------------------------------------------------------------------------------


def test_keyid_is_a_prefix_of_the_raw_key_digest(signer: Ed25519Signer) -> None:
    raw = base64.b64decode(signer.public_record("x").to_json()["public_key"])
    assert len(raw) == 32
    assert keyid_for(signer.public_key) == signer.keyid == "ed25519:" + sha256_hex(raw)[:16]


def test_public_key_files_round_trip_and_load_as_a_directory(
    tmp_path: Path, signer: Ed25519Signer
) -> None:
    record = signer.public_record("audit-service")
    write_public_key(tmp_path / "audit-service.pub.json", record)
    write_public_key(tmp_path / "demo.pub.json", Ed25519Signer.generate().public_record("demo"))
    (tmp_path / "README.md").write_text("not a key")
    document = json.loads((tmp_path / "audit-service.pub.json").read_text())
    assert document["format_version"] == 1
    assert document["algorithm"] == "ed25519"
    assert load_public_key(tmp_path / "audit-service.pub.json") == record
    keys = TrustedKeys.load_dir(tmp_path)
    assert len(keys) == 2
    assert sorted(keys.names) == ["audit-service", "demo"]
    assert signer.keyid in keys


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"keyid": "ed25519:0000000000000000"}, "does not match the key"),
        ({"format_version": 2}, "format_version 2 is not supported"),
        ({"algorithm": "rsa"}, "algorithm"),
        ({"public_key": "AAAA"}, "32 bytes"),
        ({"public_key": "not base64!"}, "not valid base64"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_public_key_files_fail_loudly(
    tmp_path: Path, signer: Ed25519Signer, change: dict[str, object], complaint: str
) -> None:
    path = tmp_path / "bad.pub.json"
    path.write_text(json.dumps({**signer.public_record("x").to_json(), **change}))
    with pytest.raises(ConfigError, match=complaint):
        load_public_key(path)


def test_private_key_file_is_owner_only_and_loads_back(tmp_path: Path) -> None:
    original = Ed25519Signer.generate()
    path = tmp_path / "audit.key"
    write_private_key_pem(path, original.private_key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_signer(path)
    assert loaded.keyid == original.keyid
    assert Ed25519Signer.from_pem_file(path).keyid == original.keyid
    record = original.public_record("audit")
    assert record.verify(b"data", loaded.sign(b"data"))
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        write_private_key_pem(path, Ed25519Signer.generate().private_key)
    write_private_key_pem(path, Ed25519Signer.generate().private_key, overwrite=True)
    assert load_signer(path).keyid != original.keyid


def test_signer_from_raw_bytes_is_deterministic() -> None:
    seed = bytes(range(32))
    first, second = Ed25519Signer.from_private_bytes(seed), Ed25519Signer.from_private_bytes(seed)
    assert first.keyid == second.keyid
    assert first.sign(b"x") == second.sign(b"x")
    with pytest.raises(ConfigError, match="32 raw bytes"):
        Ed25519Signer.from_private_bytes(b"short")


def test_unreadable_or_wrong_private_keys_fail_loudly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read private key"):
        load_signer(tmp_path / "missing.key")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import serialization

    pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "ec.key").write_bytes(pem)
    with pytest.raises(ConfigError, match="expected an Ed25519 private key"):
        load_signer(tmp_path / "ec.key")
    (tmp_path / "junk.key").write_bytes(b"junk")
    with pytest.raises(ConfigError, match=r"junk\.key"):
        load_signer(tmp_path / "junk.key")


def test_missing_key_directory_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        TrustedKeys.load_dir(tmp_path / "nowhere")


def test_public_key_record_equality_is_by_key(signer: Ed25519Signer) -> None:
    assert PublicKeyRecord.from_public_key("a", signer.public_key) == signer.public_record("a")
