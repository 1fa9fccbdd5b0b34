"""Auditor evidence bundles: one JSON file per golden that verifies offline.

The bundle holds a standard DSSE envelope whose payload is an in-toto Statement v1
(``application/vnd.in-toto+json``): its subjects are the golden's files by SHA-256 and its
predicate names the approvals chain head. Beside the envelope: every approval line, the
public keys that signed anything, and the trust policy text. Any generic DSSE verifier can
check the envelope; :func:`verify_bundle` also checks the approvals chain against it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from harness.canonical import dumps_canonical, jcs_bytes, sha256_hex
from harness.errors import AuditIntegrityError, ConfigError
from harness.integrity import (
    Envelope,
    PublicKeyRecord,
    Signer,
    TrustedKeys,
    sign_envelope,
    verify_envelope,
)
from replay._golden_verify import approval_counter_problems, approval_link_problems
from replay.errors import GoldenMissing, SignatureError
from replay.store import GoldenStore, atomic_write_bytes

__all__ = ["BUNDLE_FORMAT_VERSION", "IN_TOTO_PAYLOAD_TYPE", "build_bundle", "verify_bundle"]

BUNDLE_FORMAT_VERSION: Final = 1
IN_TOTO_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final = "https://harness.invalid/golden-approval/v1"
_BOUND: Final = (
    ("new_trace_sha256", "trace.json"),
    ("audit_sha256", "audit.jsonl"),
    ("cassette_sha256", "cassette"),
    ("scenario_sha256", "scenario.yaml"),
)


def build_bundle(store: GoldenStore, name: str, *, signer: Signer) -> dict[str, Any]:
    """The evidence bundle for ``name``, signed by ``signer`` (refused if the golden does not verify)."""
    from replay.signing import load_trusted_keys
    from replay.trust import load_policy, policy_path, verify_scenario

    verdict = verify_scenario(store, name, allow_demo_key=True)
    if not verdict.ok:
        raise SignatureError(
            f"refusing to export evidence for {name!r}, it does not verify: {verdict.problems[0]}"
        )
    paths = store.paths(name)
    files = {
        "trace.json": paths.trace,
        "audit.jsonl": paths.audit,
        "audit.dsse.json": paths.audit_dsse,
        "scenario.yaml": paths.scenario,
        "cassette": paths.cassette,
        "approvals.jsonl": paths.approvals,
    }
    subjects = []
    for label, path in files.items():
        if not path.exists():
            raise GoldenMissing(f"scenario {name!r}: {store.display(path)} is missing ({label})")
        subjects.append(
            {"name": store.display(path), "digest": {"sha256": sha256_hex(path.read_bytes())}}
        )
    lines = paths.approvals.read_bytes().splitlines()
    latest = json.loads(lines[-1])
    policy = load_policy(store)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "scenario": name,
            "approvals_head_sha256": sha256_hex(lines[-1]),
            "counter": latest.get("counter"),
            "approvers": sorted({json.loads(line).get("approver") for line in lines}),
            "trust_policy_sha256": policy.sha256,
            "required_approvals": policy.required_approvals,
        },
    }
    envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, jcs_bytes(statement), signer)
    keys = [record.to_json() for record in load_trusted_keys(store)]
    return {
        "format_version": BUNDLE_FORMAT_VERSION,
        "dsse": envelope.to_json(),
        "approvals": [line.decode("utf-8") for line in lines],
        "public_keys": keys,
        "trust_policy": policy_path(store).read_text(encoding="utf-8"),
    }


def write_bundle(path: Path, bundle: dict[str, Any]) -> None:
    """Write ``bundle`` as canonical JSON."""
    atomic_write_bytes(path, dumps_canonical(bundle).encode("utf-8"))


@dataclass
class BundleReport:
    """What verifying a bundle found: facts for the auditor, and problems."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_bundle_file(path: Path, *, trusted_keys: Path | None = None) -> BundleReport:
    """:func:`verify_bundle` on a file; ``trusted_keys`` pins the signers to a key directory."""
    try:
        bundle = json.loads(path.read_bytes())
    except ValueError as exc:
        return BundleReport(problems=[f"{path} is not JSON: {exc}"])
    pinned = None
    if trusted_keys is not None:
        try:
            pinned = TrustedKeys.load_dir(trusted_keys)
        except ConfigError as exc:
            return BundleReport(problems=[exc.message])
    return verify_bundle(bundle, pinned=pinned)


def verify_bundle(bundle: Any, *, pinned: TrustedKeys | None = None) -> BundleReport:
    """Check the envelope, its in-toto statement and the approvals chain; public keys only."""
    report = BundleReport()
    if not isinstance(bundle, dict) or bundle.get("format_version") != BUNDLE_FORMAT_VERSION:
        report.problems.append(f"not an evidence bundle of format_version {BUNDLE_FORMAT_VERSION}")
        return report
    try:
        carried = TrustedKeys(
            PublicKeyRecord.from_json(k, source="bundle key") for k in bundle.get("public_keys", [])
        )
    except (ConfigError, AttributeError) as exc:
        report.problems.append(f"a public key in the bundle is unusable: {exc}")
        return report
    keys = pinned if pinned is not None else carried
    if pinned is None:
        report.lines.append("trusting the public keys carried in the bundle (pin yours with --trusted-keys)")
    try:
        envelope = Envelope.from_json(bundle.get("dsse") or {})
        verified = verify_envelope(envelope, keys, payload_type=IN_TOTO_PAYLOAD_TYPE)
    except AuditIntegrityError as exc:
        report.problems.append(f"the DSSE envelope does not verify with the trusted keys: {exc.message}")
        return report
    report.lines.append(f"envelope signed by {verified.key.name!r} ({verified.keyid})")
    statement = json.loads(verified.payload)
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        report.problems.append("the envelope does not carry a golden-approval in-toto Statement v1")
        return report
    subjects = {
        Path(s["name"]).name if not s["name"].startswith("cassettes/") else "cassette": s["digest"]["sha256"]
        for s in statement.get("subject", [])
    }
    predicate = statement.get("predicate", {})
    scenario = predicate.get("scenario")
    _check_approvals(report, bundle.get("approvals"), subjects, predicate, keys, scenario)
    if report.ok:
        report.lines.append(
            f"{scenario}: {len(subjects)} subjects, approvals chain of {predicate.get('counter')} "
            f"verified (head sha256:{predicate.get('approvals_head_sha256')})"
        )
    return report


def _check_approvals(
    report: BundleReport,
    approvals: Any,
    subjects: dict[str, str],
    predicate: dict[str, Any],
    keys: TrustedKeys,
    scenario: Any,
) -> None:
    if not isinstance(approvals, list) or not approvals or not all(isinstance(a, str) for a in approvals):
        report.problems.append("the bundle carries no approvals")
        return
    lines = [a.encode("utf-8") for a in approvals]
    body = b"".join(line + b"\n" for line in lines)
    if subjects.get("approvals.jsonl") != sha256_hex(body):
        report.problems.append("the approvals in the bundle are not the approvals.jsonl the statement names")
    if predicate.get("approvals_head_sha256") != sha256_hex(lines[-1]):
        report.problems.append("the statement's approvals head is not the last approval in the bundle")
    report.problems += approval_link_problems("approvals", lines)
    report.problems += approval_counter_problems("approvals", lines)
    for number, line in enumerate(lines, start=1):
        approval = json.loads(line)
        try:
            signature = base64.b64decode(approval.get("sig", ""), validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        message = jcs_bytes({k: v for k, v in approval.items() if k != "sig"})
        record = keys.verify(message, signature, keyid_hint=approval.get("keyid"))
        if record is None:
            report.problems.append(f"approval {number} is not signed by a trusted key")
        else:
            report.lines.append(
                f"approval {number}: {approval.get('approver')!r} at {approval.get('at')} "
                f"with {record.name!r} ({record.keyid})"
            )
        if approval.get("scenario") != scenario:
            report.problems.append(f"approval {number} is for {approval.get('scenario')!r}, not {scenario!r}")
    latest = json.loads(lines[-1])
    for key, label in _BOUND:
        if latest.get(key) != subjects.get(label):
            report.problems.append(
                f"the latest approval binds {label} sha256 {latest.get(key)}, the statement "
                f"names {subjects.get(label)}"
            )
