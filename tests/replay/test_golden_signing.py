"""Signed goldens: an untouched golden verifies; every tampering is named by scenario and entry."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from harness.canonical import jcs_bytes, sha256_hex
from harness.integrity import (
    Ed25519Signer,
    TrustedKeys,
    write_private_key_pem,
    write_public_key,
)
from replay.errors import SignatureError
from replay.signing import (
    AUDIT_PAYLOAD_TYPE,
    GoldenVerification,
    append_approval,
    load_trusted_keys,
    render_verify_table,
    resolve_approver,
    sign_golden,
    signer_from_env,
    verify_all,
    verify_golden,
    verify_json,
)
from replay.store import GoldenStore, audit_jsonl_bytes
from tests.support.goldens import chained_audit, trace_bytes

pytestmark = [pytest.mark.tier1, pytest.mark.security]

NAME = "checkout"
AT = "2026-01-01T10:00:00Z"


class LyingSigner:
    """Claims one key's keyid while signing with another key."""

    def __init__(self, claimed: Ed25519Signer, actual: Ed25519Signer) -> None:
        self._claimed, self._actual = claimed, actual

    @property
    def keyid(self) -> str:
        return self._claimed.keyid

    def sign(self, data: bytes) -> bytes:
        return self._actual.sign(data)


def audit(n: int, *, tweak: str = "") -> list[dict[str, Any]]:
    return chained_audit(n, note=tweak)


@pytest.fixture
def alice() -> Ed25519Signer:
    return Ed25519Signer.generate()


@pytest.fixture
def mallory() -> Ed25519Signer:
    return Ed25519Signer.generate()


@pytest.fixture
def store(tmp_path: Path, alice: Ed25519Signer) -> GoldenStore:
    """One recorded, signed and approved golden with 5 audit entries; alice is trusted."""
    store = GoldenStore(tmp_path)
    store.keys_dir.mkdir(parents=True)
    write_public_key(store.keys_dir / "alice.pub.json", alice.public_record("alice"))
    make_golden(store, NAME, alice)
    return store


@pytest.fixture
def trusted(store: GoldenStore) -> TrustedKeys:
    return load_trusted_keys(store)


def make_golden(store: GoldenStore, name: str, signer: Ed25519Signer, n: int = 5) -> None:
    folder = store.goldens_dir / name
    folder.mkdir(parents=True)
    (folder / "scenario.yaml").write_text(f"name: {name}\n")
    entries = audit(n)
    store.write_golden(name, trace_bytes(entries), entries, cassette_new=None)
    sign_golden(store, name, signer=signer)
    approve(store, name, signer)


def approve(
    store: GoldenStore, name: str, signer: Any, reason: str = "first", at: str = AT
) -> dict[str, Any]:
    return append_approval(
        store,
        name,
        signer=signer,
        approver="alice",
        reason=reason,
        old_trace_sha256=None,
        at=at,
    )


def problems(store: GoldenStore, trusted: TrustedKeys) -> str:
    result = verify_golden(store, NAME, trusted)
    assert not result.ok
    assert result.scenario == NAME
    return "\n".join(result.problems)


def approval_lines(store: GoldenStore) -> list[bytes]:
    return store.paths(NAME).approvals.read_bytes().splitlines(keepends=True)


# --- the happy path -------------------------------------------------------------------


def test_untouched_golden_verifies(store: GoldenStore, trusted: TrustedKeys) -> None:
    result = verify_golden(store, NAME, trusted)
    assert result == GoldenVerification(
        scenario=NAME, ok=True, signer="alice", entries=5, problems=(), approvals=1
    )
    table = render_verify_table([result])
    assert table.splitlines()[0].split() == ["scenario", "signer", "entries", "status"]
    assert "checkout  alice" in table and "ok" in table
    assert "1 golden: 1 verified, 0 failed" in table
    assert json.loads(verify_json([result]))["ok"] is True


def test_envelope_and_approval_have_the_documented_shape(store: GoldenStore, alice: Ed25519Signer) -> None:
    paths = store.paths(NAME)
    envelope = json.loads(paths.audit_dsse.read_bytes())
    assert envelope["payloadType"] == AUDIT_PAYLOAD_TYPE
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement == {
        "format_version": 2,
        "scenario": NAME,
        "audit_sha256": sha256_hex(paths.audit.read_bytes()),
        "trace_sha256": sha256_hex(paths.trace.read_bytes()),
        "cassette_sha256": None,  # this golden never talked to a provider
        "scenario_sha256": sha256_hex(paths.scenario.read_bytes()),
        "entries": 5,
    }
    (line,) = approval_lines(store)
    approval = json.loads(line)
    assert line == jcs_bytes(approval) + b"\n"
    assert approval["prev_line_sha256"] is None
    assert approval["counter"] == 1
    assert approval["scenario_sha256"] == statement["scenario_sha256"]
    assert approval["keyid"] == alice.keyid
    assert approval["new_trace_sha256"] == statement["trace_sha256"]
    assert approval["audit_sha256"] == statement["audit_sha256"]
    body = {k: v for k, v in approval.items() if k != "sig"}
    assert alice.public_record("a").verify(jcs_bytes(body), base64.b64decode(approval["sig"]))

    second = approve(store, NAME, alice, reason="again", at="2026-01-02T10:00:00+00:00")
    assert second["prev_line_sha256"] == sha256_hex(line.rstrip(b"\n"))
    assert second["counter"] == 2


def test_verify_all_and_json_cover_every_scenario(
    store: GoldenStore, trusted: TrustedKeys, mallory: Ed25519Signer
) -> None:
    make_golden(store, "another", mallory)
    results = verify_all(store, trusted)
    assert [(r.scenario, r.ok) for r in results] == [("another", False), (NAME, True)]
    document = json.loads(verify_json(results))
    assert document["ok"] is False
    assert [g["scenario"] for g in document["goldens"]] == ["another", NAME]
    table = render_verify_table(results)
    assert "FAILED" in table
    assert "another: goldens/another/audit.dsse.json is signed by key" in table
    assert "2 goldens: 1 verified, 1 failed" in table


# --- tampering ------------------------------------------------------------------------


def test_golden_signed_by_an_untrusted_key_is_rejected(
    store: GoldenStore, trusted: TrustedKeys, mallory: Ed25519Signer
) -> None:
    sign_golden(store, NAME, signer=mallory)
    text = problems(store, trusted)
    assert (
        f"goldens/{NAME}/audit.dsse.json is signed by key {mallory.keyid} which is not in "
        "goldens/keys" in text
    )
    assert verify_golden(store, NAME, trusted).signer is None


def test_envelope_naming_a_trusted_keyid_but_signed_by_another_key(
    store: GoldenStore, trusted: TrustedKeys, alice: Ed25519Signer, mallory: Ed25519Signer
) -> None:
    sign_golden(store, NAME, signer=LyingSigner(alice, mallory))
    envelope = json.loads(store.paths(NAME).audit_dsse.read_bytes())
    assert envelope["signatures"][0]["keyid"] == alice.keyid  # the lie is in the file
    text = problems(store, trusted)
    assert f"names trusted key {alice.keyid} ('alice') but its signature does not verify" in text


def test_audit_jsonl_edited_by_hand_after_signing(store: GoldenStore, trusted: TrustedKeys) -> None:
    path = store.paths(NAME).audit
    lines = path.read_bytes().splitlines(keepends=True)
    entry = json.loads(lines[3])
    entry["payload"]["n"] = 999  # a hand edit that does not bother rehashing
    lines[3] = jcs_bytes(entry) + b"\n"
    path.write_bytes(b"".join(lines))
    text = problems(store, trusted)
    assert f"goldens/{NAME}/audit.jsonl was edited after signing" in text
    assert "audit chain broken at seq 3: modified" in text
    assert "audit section differs from audit.jsonl at seq 3" in text
    assert "the latest approval (line 1, by 'alice'" in text


def test_trace_audit_section_rewritten_consistently_after_signing(
    store: GoldenStore, trusted: TrustedKeys
) -> None:
    # A careful forger rehashes the whole chain in trace.json: the chain is valid again,
    # but the signed digests and audit.jsonl still give it away.
    forged = audit(5, tweak="forged")
    store.paths(NAME).trace.write_bytes(trace_bytes(forged))
    text = problems(store, trusted)
    assert f"goldens/{NAME}/trace.json was edited after signing" in text
    assert f"goldens/{NAME}/trace.json's audit section differs from audit.jsonl at seq 0" in text
    assert "names trace sha256" in text


def test_whole_golden_rewritten_and_resigned_without_approval(
    store: GoldenStore, trusted: TrustedKeys, alice: Ed25519Signer
) -> None:
    entries = audit(6)
    store.write_golden(NAME, trace_bytes(entries), entries, cassette_new=None)
    sign_golden(store, NAME, signer=alice)
    new_sha = sha256_hex(store.paths(NAME).trace.read_bytes())
    text = problems(store, trusted)
    assert "the latest approval (line 1, by 'alice' at 2026-01-01T10:00:00Z)" in text
    assert f"but goldens/{NAME}/trace.json is {new_sha}" in text


def test_reordered_approvals_are_detected(
    store: GoldenStore, trusted: TrustedKeys, alice: Ed25519Signer
) -> None:
    approve(store, NAME, alice, reason="second")
    approve(store, NAME, alice, reason="third")
    first, second, third = approval_lines(store)
    store.paths(NAME).approvals.write_bytes(first + third + second)
    text = problems(store, trusted)
    assert (
        f"goldens/{NAME}/approvals.jsonl line 2 is out of order (its prev_line_sha256 does not "
        "match line 1): it follows line 3: the lines were re-ordered" in text
    )
    assert "line 3 is out of order" in text


def test_swapping_the_first_approval_is_detected(
    store: GoldenStore, trusted: TrustedKeys, alice: Ed25519Signer
) -> None:
    approve(store, NAME, alice, reason="second")
    first, second = approval_lines(store)
    store.paths(NAME).approvals.write_bytes(second + first)
    text = problems(store, trusted)
    assert "approvals.jsonl line 1 is not the first approval" in text
    assert "line 2 is out of order" in text


def test_deleted_approval_line_is_detected(
    store: GoldenStore, trusted: TrustedKeys, alice: Ed25519Signer
) -> None:
    approve(store, NAME, alice, reason="second")
    approve(store, NAME, alice, reason="third")
    first, _second, third = approval_lines(store)
    store.paths(NAME).approvals.write_bytes(first + third)
    text = problems(store, trusted)
    assert (
        f"goldens/{NAME}/approvals.jsonl line 2 is out of order (its prev_line_sha256 does not "
        "match line 1): an approval before it was deleted or edited" in text
    )


def test_deleting_every_approval_is_detected(store: GoldenStore, trusted: TrustedKeys) -> None:
    store.paths(NAME).approvals.write_bytes(b"")
    assert "approvals.jsonl is empty: nobody approved this golden" in problems(store, trusted)
    store.paths(NAME).approvals.unlink()
    assert "approvals.jsonl is missing" in problems(store, trusted)


def test_edited_approval_fails_its_signature(store: GoldenStore, trusted: TrustedKeys) -> None:
    (line,) = approval_lines(store)
    approval = json.loads(line)
    approval["approver"] = "bob"  # claim someone else approved it; keep alice's signature
    store.paths(NAME).approvals.write_bytes(jcs_bytes(approval) + b"\n")
    text = problems(store, trusted)
    assert (
        f"goldens/{NAME}/approvals.jsonl line 1 (approver 'bob'): its signature does not "
        "verify with trusted key" in text
    )
    assert "forged or edited" in text


def test_forged_approval_signature_claiming_a_trusted_key(
    store: GoldenStore, trusted: TrustedKeys, alice: Ed25519Signer, mallory: Ed25519Signer
) -> None:
    approve(store, NAME, LyingSigner(alice, mallory), reason="sneaky")
    text = problems(store, trusted)
    assert (
        f"approvals.jsonl line 2 (approver 'alice'): its signature does not verify with "
        f"trusted key {alice.keyid} ('alice')" in text
    )


def test_approval_by_an_untrusted_key(
    store: GoldenStore, trusted: TrustedKeys, mallory: Ed25519Signer
) -> None:
    approve(store, NAME, mallory, reason="self-approved")
    text = problems(store, trusted)
    assert (
        f"approvals.jsonl line 2 (approver 'alice') is signed by key {mallory.keyid} which is "
        "not in goldens/keys" in text
    )


def test_no_trusted_keys_means_nothing_verifies(store: GoldenStore) -> None:
    text = problems(store, TrustedKeys())
    assert "there are no trusted keys in goldens/keys" in text


def test_envelope_copied_from_another_golden(
    store: GoldenStore, trusted: TrustedKeys, alice: Ed25519Signer
) -> None:
    make_golden(store, "other", alice)
    other = store.paths("other")
    ours = store.paths(NAME)
    ours.audit_dsse.write_bytes(other.audit_dsse.read_bytes())
    assert "was signed for scenario 'other', not 'checkout'" in problems(store, trusted)


# --- refusing to sign or approve damage -----------------------------------------------


def test_sign_refuses_a_broken_chain(store: GoldenStore, alice: Ed25519Signer) -> None:
    entries = audit(3)
    entries[1]["payload"]["n"] = 42
    store.paths(NAME).audit.write_bytes(audit_jsonl_bytes(entries))
    with pytest.raises(SignatureError, match=r"refusing to sign scenario 'checkout'.*seq 1"):
        sign_golden(store, NAME, signer=alice)


def test_append_refuses_non_utc_time_and_damaged_file(store: GoldenStore, alice: Ed25519Signer) -> None:
    with pytest.raises(SignatureError, match="not an ISO 8601 UTC timestamp"):
        approve(store, NAME, alice, at="2026-01-01T10:00:00+02:00")
    approve(store, NAME, alice, reason="second")
    first, second = approval_lines(store)
    store.paths(NAME).approvals.write_bytes(second + first)
    with pytest.raises(SignatureError, match="damaged approvals file"):
        approve(store, NAME, alice, reason="third")


# --- who signs ------------------------------------------------------------------------


def test_signer_from_env(tmp_path: Path, alice: Ed25519Signer) -> None:
    pem = tmp_path / "alice.pem"
    write_private_key_pem(pem, alice.private_key)
    assert signer_from_env({"HARNESS_SIGNING_KEY": str(pem)}).keyid == alice.keyid
    with pytest.raises(SignatureError, match="HARNESS_SIGNING_KEY is not set"):
        signer_from_env({})
    with pytest.raises(SignatureError, match="HARNESS_SIGNING_KEY"):
        signer_from_env({"HARNESS_SIGNING_KEY": str(tmp_path / "missing.pem")})


def test_resolve_approver_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_approver("  carol ", env={"HARNESS_APPROVER": "dave"}) == "carol"
    assert resolve_approver(None, env={"HARNESS_APPROVER": "dave"}) == "dave"
    monkeypatch.setattr("replay.signing._git_user_name", lambda: "Git User")
    assert resolve_approver(None, env={}) == "Git User"
    monkeypatch.setattr("replay.signing._git_user_name", lambda: None)
    monkeypatch.setattr("replay.signing.getpass.getuser", lambda: "osuser")
    assert resolve_approver(None, env={}) == "osuser"
