"""Auditor evidence bundles: export, verify offline, and verify with an independent DSSE library."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.integrity import load_signer
from replay.evidence import IN_TOTO_PAYLOAD_TYPE, build_bundle, verify_bundle
from replay.store import GoldenStore

pytestmark = [pytest.mark.tier1, pytest.mark.security]

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "harness-replay"
DEMO_KEY = ROOT / "goldens" / "keys" / "DEMO-ONLY-signing-key.pem"
NAME = "provider_error"  # several approvals: the chain has links to check


@pytest.fixture
def bundle_path(tmp_path: Path) -> Path:
    out = tmp_path / "bundle.json"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["HARNESS_SIGNING_KEY"] = str(DEMO_KEY)
    done = subprocess.run(
        [str(CLI), "export-evidence", NAME, "-o", str(out), "--root", str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


def verify_cli(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "verify-evidence", str(path), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_exported_bundle_verifies_offline(bundle_path: Path, tmp_path: Path) -> None:
    done = verify_cli(bundle_path)
    assert done.returncode == 0, done.stderr
    # The chain's length is the golden's history: every line of its approvals.jsonl.
    chain = len((ROOT / "goldens" / NAME / "approvals.jsonl").read_bytes().splitlines())
    assert chain >= 2, "the scenario needs a chain with a link to check"
    assert "approval 2: " in done.stdout
    assert f"{NAME}: 6 subjects, approvals chain of {chain} verified" in done.stdout
    # Pinned to a key directory that does not hold the signer: refused.
    empty = tmp_path / "keys"
    empty.mkdir()
    pinned = verify_cli(bundle_path, "--trusted-keys", str(empty))
    assert pinned.returncode == 1
    assert "does not verify with the trusted keys" in pinned.stderr


def test_the_statement_is_a_standard_in_toto_statement(bundle_path: Path) -> None:
    bundle = json.loads(bundle_path.read_text())
    assert bundle["dsse"]["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    statement = json.loads(base64.b64decode(bundle["dsse"]["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    names = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    from harness.canonical import sha256_hex

    trace = ROOT / "goldens" / NAME / "trace.json"
    assert names[f"goldens/{NAME}/trace.json"] == sha256_hex(trace.read_bytes())
    assert names[f"cassettes/{NAME}.yaml"] == sha256_hex((ROOT / "cassettes" / f"{NAME}.yaml").read_bytes())


def test_an_independent_dsse_implementation_accepts_the_envelope(bundle_path: Path) -> None:
    """securesystemslib's DSSE verifier (its own PAE and Ed25519 code path) checks our envelope."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    bundle = json.loads(bundle_path.read_text())
    envelope = Envelope.from_dict(json.loads(json.dumps(bundle["dsse"])))  # from_dict edits its input
    keys = [
        SSlibKey(
            keyid=k["keyid"],
            keytype="ed25519",
            scheme="ed25519",
            keyval={"public": base64.b64decode(k["public_key"]).hex()},
        )
        for k in bundle["public_keys"]
    ]
    accepted = envelope.verify(keys, 1)
    assert list(accepted) == ["ed25519:223ea49f6fe73338"]
    # Its PAE is the spec's, so one flipped payload byte must fail there too.
    from securesystemslib.exceptions import VerificationError

    copy = json.loads(json.dumps(bundle["dsse"]))
    tampered = Envelope.from_dict({**copy, "payload": base64.b64encode(b"{}").decode()})
    with pytest.raises(VerificationError):
        tampered.verify(keys, 1)


def test_tampering_with_the_bundle_is_caught(bundle_path: Path) -> None:
    bundle = json.loads(bundle_path.read_text())
    assert verify_bundle(bundle).ok
    dropped = {**bundle, "approvals": bundle["approvals"][1:]}
    report = verify_bundle(dropped)
    assert any("not the approvals.jsonl the statement names" in p for p in report.problems)
    edited = json.loads(bundle["approvals"][-1])
    edited["reason"] = "rubber stamp"
    forged = {**bundle, "approvals": [*bundle["approvals"][:-1], json.dumps(edited)]}
    report = verify_bundle(forged)
    last = len(bundle["approvals"])
    assert last == len((ROOT / "goldens" / NAME / "approvals.jsonl").read_bytes().splitlines())
    assert any(f"approval {last} is not signed by a trusted key" in p for p in report.problems)


def test_export_refuses_a_golden_that_does_not_verify(tmp_path: Path) -> None:
    for folder in ("goldens", "cassettes"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    store = GoldenStore(tmp_path)
    trace = store.paths(NAME).trace
    trace.write_text(trace.read_text().replace("FAILED", "SUCCEEDED"))
    from replay.errors import SignatureError

    with pytest.raises(SignatureError, match="does not verify"):
        build_bundle(store, NAME, signer=load_signer(DEMO_KEY))
