"""The trust policy for goldens: who may approve, how many must, and which keys are burnt.

``goldens/TRUST.yaml`` names the approver keys (by keyid; the keys themselves live in
``goldens/keys/``), optional per-scenario owners, and how many distinct approvers must have
approved a golden's current state. The policy is itself signed (``goldens/TRUST.dsse.json``)
by that many of its own approvers, so editing it is a reviewed change like any golden.

A key whose private half is anywhere in the repository (the committed demo key) proves
nothing: anyone with a clone can sign with it. Such keys are found by scanning the project
for PEM private keys, and their signatures are refused unless ``allow_demo_key`` is set,
which only the demo (``make replay``, ``make test``) does.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import yaml

from harness.canonical import dumps_canonical, jcs_bytes, sha256_hex
from harness.errors import AuditIntegrityError, ConfigError
from harness.integrity import (
    Ed25519Signer,
    Envelope,
    Signer,
    TrustedKeys,
    sign_envelope,
    verify_envelope,
)
from harness.integrity.dsse import Signature
from replay._golden_verify import GoldenCheck, GoldenVerification
from replay.errors import SignatureError
from replay.store import GOLDENS_DIR, GoldenStore, atomic_write_bytes

__all__ = [
    "DEMO_KEY_PROBLEM",
    "POLICY_FILE",
    "POLICY_PAYLOAD_TYPE",
    "TrustPolicy",
    "demo_key_warning",
    "find_exposed_keys",
    "load_policy",
    "sign_policy",
    "since_problems",
    "verify_policy",
    "verify_scenario",
    "verify_under_policy",
]

POLICY_FILE: Final = "TRUST.yaml"
POLICY_DSSE_FILE: Final = "TRUST.dsse.json"
POLICY_FORMAT_VERSION: Final = 1
POLICY_PAYLOAD_TYPE: Final = "application/vnd.harness.trust-policy+json"
DEMO_KEY_PROBLEM: Final = "signed with a key whose private half is in the repository"
_PEM_BLOCK: Final = re.compile(
    rb"-----BEGIN (?:[A-Z0-9 ]+ )?PRIVATE KEY-----[A-Za-z0-9+/=\s]+-----END (?:[A-Z0-9 ]+ )?PRIVATE KEY-----"
)
_SKIP_DIRS: Final = frozenset(
    {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".harness"}
)
_MAX_SCAN_BYTES: Final = 1 << 20


@dataclass(frozen=True)
class TrustPolicy:
    """Parsed ``TRUST.yaml``."""

    approvers: tuple[str, ...]  # keyids
    required_approvals: int = 1
    owners: dict[str, tuple[str, ...]] = field(default_factory=dict)  # scenario -> keyids
    sha256: str = ""  # of the file's bytes


def policy_path(store: GoldenStore) -> Path:
    return store.goldens_dir / POLICY_FILE


def load_policy(store: GoldenStore) -> TrustPolicy:
    """Read ``goldens/TRUST.yaml`` (``SignatureError`` with what to fix when it is unusable)."""
    path = policy_path(store)
    where = store.display(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SignatureError(
            f"{where} is missing: without a trust policy no approval can be checked; add one "
            "naming the approver keyids (see docs of `harness-replay trust`)"
        ) from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise SignatureError(f"{where} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or data.get("format_version") != POLICY_FORMAT_VERSION:
        raise SignatureError(f"{where} must be a mapping with format_version {POLICY_FORMAT_VERSION}")
    approvers = data.get("approvers")
    if not isinstance(approvers, list) or not approvers:
        raise SignatureError(f"{where}: 'approvers' must be a non-empty list of {{keyid, name}}")
    keyids = []
    for item in approvers:
        keyid = item.get("keyid") if isinstance(item, dict) else None
        if not isinstance(keyid, str) or not keyid:
            raise SignatureError(f"{where}: every approver needs a 'keyid' string")
        keyids.append(keyid)
    required = data.get("required_approvals", 1)
    if not isinstance(required, int) or isinstance(required, bool) or not 1 <= required <= len(keyids):
        raise SignatureError(
            f"{where}: required_approvals must be an integer from 1 to the number of approvers "
            f"({len(keyids)}), got {required!r}"
        )
    owners_raw = data.get("owners") or {}
    if not isinstance(owners_raw, dict):
        raise SignatureError(f"{where}: 'owners' maps scenario names to lists of keyids")
    owners: dict[str, tuple[str, ...]] = {}
    for scenario, ids in owners_raw.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) and i in keyids for i in ids):
            raise SignatureError(
                f"{where}: owners of {scenario!r} must be a list of keyids listed under approvers"
            )
        owners[str(scenario)] = tuple(ids)
    return TrustPolicy(tuple(keyids), required, owners, sha256_hex(raw))


def trusted_approvers(store: GoldenStore, policy: TrustPolicy, keys: TrustedKeys) -> TrustedKeys:
    """The keys in ``keys`` that the policy names as approvers."""
    return TrustedKeys(record for record in keys if record.keyid in policy.approvers)


# --- keys whose private half is in the repository ------------------------------------------


def find_exposed_keys(root: Path) -> dict[str, Path]:
    """keyid -> file of every Ed25519 private key (PEM) found under ``root``."""
    return dict(_exposed(str(Path(root).resolve())))


@functools.lru_cache(maxsize=32)
def _exposed(root: str) -> tuple[tuple[str, Path], ...]:
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            try:
                if path.stat().st_size > _MAX_SCAN_BYTES or path.is_symlink():
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            if b"PRIVATE KEY-----" not in data:
                continue
            for block in _PEM_BLOCK.findall(data):
                try:
                    signer = Ed25519Signer.from_pem(block)
                except (ConfigError, ValueError, TypeError):
                    continue
                found.setdefault(signer.keyid, path)
    return tuple(sorted(found.items()))


def demo_key_warning(store: GoldenStore) -> str | None:
    """The warning printed when the demo key is explicitly allowed and actually trusted."""
    exposed = find_exposed_keys(store.root)
    try:
        policy = load_policy(store)
    except SignatureError:
        return None
    burnt = sorted(k for k in policy.approvers if k in exposed)
    if not burnt:
        return None
    where = ", ".join(_relative(exposed[k], store.root) for k in burnt)
    return (
        f"--allow-demo-key: trusting {', '.join(burnt)} although its private key is in the "
        f"repository ({where}); these goldens prove nothing to an auditor"
    )


# --- verdicts ------------------------------------------------------------------------------


def verify_under_policy(
    store: GoldenStore,
    names: Sequence[str] | None = None,
    *,
    allow_demo_key: bool,
    pinned: TrustedKeys | None = None,
    bind_inputs: bool = True,
) -> list[GoldenVerification]:
    """Every (or each named) golden, plus the policy itself, checked under ``TRUST.yaml``.

    ``pinned`` replaces ``goldens/keys/`` as the source of public keys (an auditor's own copy).
    """
    from replay.signing import load_trusted_keys

    policy = load_policy(store)
    # Every known key may have signed history; only the policy's approvers give authority.
    keys = pinned if pinned is not None else load_trusted_keys(store)
    exposed = set() if allow_demo_key else set(find_exposed_keys(store.root))
    results = [verify_policy(store, policy, trusted_approvers(store, policy, keys), exposed=exposed)]
    for name in store.scenario_names() if names is None else names:
        results.append(_verify(store, name, policy, keys, exposed=exposed, bind_inputs=bind_inputs))
    return results


def verify_scenario(
    store: GoldenStore,
    name: str,
    *,
    allow_demo_key: bool,
    pinned: TrustedKeys | None = None,
    bind_inputs: bool = True,
) -> GoldenVerification:
    """One golden under the policy; a broken policy is reported as this golden's problem.

    ``bind_inputs=False`` leaves out the cassette and ``scenario.yaml`` digests (the gate
    replays first, so an edited input shows as a trace diff rather than a signature error).
    """
    policy_result, result = verify_under_policy(
        store, [name], allow_demo_key=allow_demo_key, pinned=pinned, bind_inputs=bind_inputs
    )
    if policy_result.ok:
        return result
    problems = tuple(f"{POLICY_FILE}: {p}" for p in policy_result.problems) + result.problems
    return replace(result, ok=False, problems=problems)


def _verify(
    store: GoldenStore,
    name: str,
    policy: TrustPolicy,
    keys: TrustedKeys,
    *,
    exposed: set[str],
    bind_inputs: bool = True,
) -> GoldenVerification:
    paths = store.paths(name)
    check = GoldenCheck(store, paths, keys, bind_inputs=bind_inputs)
    check.run()
    problems = list(check.problems)
    policy_name = f"{GOLDENS_DIR}/{POLICY_FILE}"
    if check.signer_keyid is not None and check.signer_keyid not in policy.approvers:
        problems.append(
            f"{store.display(paths.audit_dsse)} is signed by {check.signer!r} ({check.signer_keyid}), "
            f"which is not an approver in {policy_name}"
        )
    lines = paths.approvals.read_bytes().splitlines() if paths.approvals.exists() else []
    approvals = [_loads(line) for line in lines]
    if approvals and approvals[-1] is not None and len(check.approval_keyids) == len(lines):
        latest = approvals[-1]
        bound: tuple[str, ...] = ("new_trace_sha256", "audit_sha256")
        bound += ("cassette_sha256", "scenario_sha256") if bind_inputs else ()
        quorum: list[str] = []
        for approval, keyid in zip(reversed(approvals), reversed(check.approval_keyids), strict=True):
            if approval is None or any(approval.get(k) != latest.get(k) for k in bound):
                break  # approvals of an earlier state do not count for this one
            if keyid is not None and keyid in policy.approvers and keyid not in quorum:
                quorum.append(keyid)
        if len(quorum) < policy.required_approvals:
            problems.append(
                f"the current state has {len(quorum)} distinct approver(s) named in {policy_name}, "
                "the policy requires "
                f"{policy.required_approvals}; an approver must run `harness-replay approve {name}`"
            )
        owners = policy.owners.get(name)
        if owners and not set(owners) & set(quorum):
            problems.append(
                f"none of the approvers of the current state owns {name!r} (owners: "
                f"{', '.join(owners)})"
            )
        burnt = sorted({k for k in quorum if k in exposed})
        if check.signer_keyid in exposed and check.signer_keyid not in burnt:
            burnt.append(check.signer_keyid)
        if burnt:
            problems.append(
                f"{DEMO_KEY_PROBLEM} ({', '.join(burnt)}); anyone with a clone can forge it: "
                "re-sign with your own key, or pass --allow-demo-key to run the demo"
            )
    return GoldenVerification(
        scenario=name,
        ok=not problems,
        signer=check.signer,
        entries=check.entries,
        problems=tuple(problems),
        approvals=check.approvals,
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def _loads(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- the policy's own signature -------------------------------------------------------------


def verify_policy(
    store: GoldenStore, policy: TrustPolicy, keys: TrustedKeys, *, exposed: set[str]
) -> GoldenVerification:
    """``TRUST.yaml`` is signed by ``required_approvals`` distinct approvers it names."""
    label = f"({GOLDENS_DIR}/{POLICY_FILE})"
    dsse = store.goldens_dir / POLICY_DSSE_FILE
    problems: list[str] = []
    signers: list[str] = []
    try:
        envelope = Envelope.from_json(json.loads(dsse.read_bytes()))
    except FileNotFoundError:
        envelope = None
        problems.append(f"{store.display(dsse)} is missing: sign the policy with `harness-replay trust sign`")
    except (ValueError, AuditIntegrityError) as exc:
        envelope = None
        problems.append(f"{store.display(dsse)} is not a DSSE envelope: {exc}")
    if envelope is not None:
        for signature in envelope.signatures:
            single = Envelope(envelope.payload_type, envelope.payload, (signature,))
            try:
                verified = verify_envelope(single, keys, payload_type=POLICY_PAYLOAD_TYPE)
            except AuditIntegrityError:
                continue
            if verified.keyid not in signers:
                signers.append(verified.keyid)
        statement = _loads(envelope.payload) or {}
        if statement.get("policy_sha256") != policy.sha256:
            problems.append(
                f"{store.display(policy_path(store))} was edited after it was signed (sha256 "
                f"{policy.sha256} is not the signed {statement.get('policy_sha256')}); the change "
                "must be signed by the approvers (`harness-replay trust sign`)"
            )
        if len(signers) < policy.required_approvals:
            problems.append(
                f"the policy is signed by {len(signers)} trusted approver(s), it requires "
                f"{policy.required_approvals}"
            )
        burnt = [k for k in signers if k in exposed]
        if burnt:
            problems.append(
                f"{DEMO_KEY_PROBLEM} ({', '.join(burnt)}); re-sign the policy with your own key, "
                "or pass --allow-demo-key to run the demo"
            )
    return GoldenVerification(
        scenario=label,
        ok=not problems,
        signer=", ".join(signers) or None,
        entries=0,
        problems=tuple(problems),
    )


def sign_policy(store: GoldenStore, *, signer: Signer) -> int:
    """Add ``signer``'s signature to ``TRUST.dsse.json`` (restarting it if the policy changed).

    Returns how many signatures the envelope now carries.
    """
    policy = load_policy(store)
    if signer.keyid not in policy.approvers:
        raise SignatureError(
            f"key {signer.keyid} is not an approver in {store.display(policy_path(store))}; only "
            "listed approvers may sign the policy"
        )
    payload = jcs_bytes({"format_version": POLICY_FORMAT_VERSION, "policy_sha256": policy.sha256})
    dsse = store.goldens_dir / POLICY_DSSE_FILE
    kept: list[Signature] = []
    if dsse.exists():
        try:
            old = Envelope.from_json(json.loads(dsse.read_bytes()))
        except (ValueError, AuditIntegrityError):
            old = None
        if old is not None and old.payload == payload:
            kept = [s for s in old.signatures if s.keyid != signer.keyid]
    mine = sign_envelope(POLICY_PAYLOAD_TYPE, payload, signer).signatures
    envelope = Envelope(POLICY_PAYLOAD_TYPE, payload, (*kept, *mine))
    atomic_write_bytes(dsse, dumps_canonical(envelope.to_json()).encode("utf-8"))
    return len(envelope.signatures)


# --- rollback ---------------------------------------------------------------------------------


def since_problems(store: GoldenStore, points: Iterable[str]) -> list[str]:
    """Prove every approvals chain only grew since each known-good point.

    A point is a git ref (every scenario's ``approvals.jsonl`` then must start with the bytes
    it had at that ref) or the SHA-256 of one approval line (some chain must still hold it).
    """
    problems: list[str] = []
    for point in points:
        digest = point.removeprefix("sha256:")
        if re.fullmatch(r"[0-9a-f]{64}", digest):
            problems += _since_digest(store, digest)
        else:
            problems += _since_ref(store, point)
    return problems


def _since_digest(store: GoldenStore, digest: str) -> list[str]:
    for name in store.scenario_names():
        path = store.paths(name).approvals
        if path.exists() and any(sha256_hex(line) == digest for line in path.read_bytes().splitlines()):
            return []
    return [
        f"no approvals chain holds the approval sha256:{digest} that was known good: a "
        "scenario's approvals were reverted or rewritten since"
    ]


def _since_ref(store: GoldenStore, ref: str) -> list[str]:
    from replay._git import GitError, file_at, toplevel

    try:
        top = toplevel(store.root)
    except GitError as exc:
        raise SignatureError(f"--since {ref}: {exc}") from exc
    problems = _policy_since_ref(store, ref, top)
    for name in store.scenario_names():
        path = store.paths(name).approvals
        relative = path.resolve().relative_to(top).as_posix()
        try:
            old = file_at(top, ref, relative)
        except GitError as exc:
            raise SignatureError(f"--since {ref}: {exc}") from exc
        if old is None:
            continue  # the scenario is newer than the ref
        now = path.read_bytes() if path.exists() else b""
        old_lines, now_lines = old.splitlines(), now.splitlines()
        if now_lines[: len(old_lines)] != old_lines:
            problems.append(
                f"{name}: approvals were rolled back or rewritten since {ref} (it had "
                f"{len(old_lines)} approval(s), counter {_last_counter(old_lines)}; now "
                f"{len(now_lines)}, counter {_last_counter(now_lines)})"
            )
    return problems


def _policy_since_ref(store: GoldenStore, ref: str, top: Path) -> list[str]:
    """A policy changed since ``ref`` must be signed by enough approvers of the policy at ``ref``."""
    from replay._git import file_at

    relative = policy_path(store).resolve().relative_to(top).as_posix()
    old_raw = file_at(top, ref, relative)
    if old_raw is None or sha256_hex(old_raw) == load_policy(store).sha256:
        return []
    with _scratch_policy(old_raw) as old_store:
        old = load_policy(old_store)
    from replay.signing import load_trusted_keys

    keys = trusted_approvers(store, old, load_trusted_keys(store))
    dsse = store.goldens_dir / POLICY_DSSE_FILE
    signers: set[str] = set()
    try:
        envelope = Envelope.from_json(json.loads(dsse.read_bytes()))
    except (OSError, ValueError, AuditIntegrityError):
        envelope = None
    if envelope is not None:
        for signature in envelope.signatures:
            single = Envelope(envelope.payload_type, envelope.payload, (signature,))
            try:
                signers.add(verify_envelope(single, keys, payload_type=POLICY_PAYLOAD_TYPE).keyid)
            except AuditIntegrityError:
                continue
    if len(signers) >= old.required_approvals:
        return []
    return [
        f"{POLICY_FILE} changed since {ref} but only {len(signers)} approver(s) trusted at {ref} "
        f"signed the change (it needs {old.required_approvals}): keys cannot vouch for themselves"
    ]


@contextlib.contextmanager
def _scratch_policy(raw: bytes) -> Iterator[GoldenStore]:
    with tempfile.TemporaryDirectory(prefix="harness-trust-") as tmp:
        (Path(tmp) / GOLDENS_DIR).mkdir()
        (Path(tmp) / GOLDENS_DIR / POLICY_FILE).write_bytes(raw)
        yield GoldenStore(Path(tmp))


def _last_counter(lines: Sequence[bytes]) -> Any:
    last = _loads(lines[-1]) if lines else None
    return None if last is None else last.get("counter")

