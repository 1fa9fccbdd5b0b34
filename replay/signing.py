"""Sign golden audit logs, record approvals, and verify both with public keys only.

``audit.dsse.json`` is a DSSE envelope over a statement that pins ``trace.json`` and
``audit.jsonl`` by SHA-256. ``approvals.jsonl`` is append-only: each line is the JCS bytes
of an approval carrying ``prev_line_sha256`` (SHA-256 of the previous line's bytes, without
its newline) and an Ed25519 signature over the JCS of the approval without ``sig``.
Trust comes from ``goldens/keys/`` alone; a ``keyid`` only names which key to try first.
The verification half lives in ``replay._golden_verify`` and is re-exported here.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from harness.canonical import dumps_canonical, jcs_bytes, sha256_hex
from harness.errors import ConfigError
from harness.integrity import (
    Ed25519Signer,
    Signer,
    TrustedKeys,
    load_signer,
    sign_envelope,
)
from replay._golden_verify import (
    APPROVAL_FORMAT_VERSION,
    AUDIT_PAYLOAD_TYPE,
    STATEMENT_FORMAT_VERSION,
    TRACE_FORMAT_VERSION,
    VERIFY_FORMAT_VERSION,
    GoldenCheck,
    GoldenVerification,
    approval_link_problems,
    file_sha256,
    render_verify_table,
    verify_all,
    verify_golden,
    verify_json,
)
from replay.errors import FormatVersionError, GoldenMissing, SignatureError
from replay.store import GoldenPaths, GoldenStore, atomic_write_bytes, audit_jsonl_bytes

__all__ = [
    "APPROVAL_FORMAT_VERSION",
    "AUDIT_PAYLOAD_TYPE",
    "DEFAULT_REASON",
    "STATEMENT_FORMAT_VERSION",
    "TRACE_FORMAT_VERSION",
    "VERIFY_FORMAT_VERSION",
    "GoldenVerification",
    "append_approval",
    "load_trusted_keys",
    "render_verify_table",
    "resolve_approver",
    "sign_golden",
    "signer_from_env",
    "utc_now",
    "verify_all",
    "verify_golden",
    "verify_json",
]

DEFAULT_REASON: Final = "reviewed"
SIGNING_KEY_ENV: Final = "HARNESS_SIGNING_KEY"
APPROVER_ENV: Final = "HARNESS_APPROVER"


# --- who signs ---------------------------------------------------------------------------


def signer_from_env(env: Mapping[str, str] | None = None) -> Ed25519Signer:
    """The approver's signing key from the PEM file named by ``HARNESS_SIGNING_KEY``."""
    environ = os.environ if env is None else env
    path = environ.get(SIGNING_KEY_ENV)
    if not path:
        raise SignatureError(
            f"{SIGNING_KEY_ENV} is not set: point it at your Ed25519 private key PEM (kept "
            "outside the repo; create one with `harness-replay keygen ~/keys/me.pem --name \"Your Name\"`)"
        )
    try:
        return load_signer(path)
    except ConfigError as exc:
        raise SignatureError(f"{SIGNING_KEY_ENV}: {exc.message}") from exc


def resolve_approver(explicit: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """The approver: ``explicit``, else ``HARNESS_APPROVER``, else git ``user.name``, else the OS user."""
    environ = os.environ if env is None else env
    for candidate in (explicit, environ.get(APPROVER_ENV)):
        if candidate and candidate.strip():
            return candidate.strip()
    return _git_user_name() or getpass.getuser()


def _git_user_name() -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        # A fixed argv with an absolute executable path; nothing user-controlled reaches it.
        done = subprocess.run(  # noqa: S603
            [git, "config", "user.name"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def utc_now() -> str:
    """The current time as ISO 8601 UTC with seconds (``2026-01-01T09:00:00Z``)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- signing -----------------------------------------------------------------------------


def sign_golden(store: GoldenStore, name: str, *, signer: Signer) -> None:
    """Write ``audit.dsse.json`` over the current ``trace.json`` and ``audit.jsonl``.

    Refuses (``SignatureError``) to sign a golden whose audit chain is broken or whose
    trace disagrees with ``audit.jsonl``: a signature must never bless damage.
    """
    paths = store.paths(name)
    trace_bytes = _read_required(store, paths, "trace")
    audit_bytes = _read_required(store, paths, "audit")
    problems = _signable_problems(store, paths, trace_bytes, audit_bytes)
    if problems:
        raise SignatureError(
            f"refusing to sign scenario {name!r}: {'; '.join(problems)}; re-record or fix "
            "the golden first"
        )
    statement = {
        "format_version": STATEMENT_FORMAT_VERSION,
        "scenario": name,
        "audit_sha256": sha256_hex(audit_bytes),
        "trace_sha256": sha256_hex(trace_bytes),
        "cassette_sha256": file_sha256(paths.cassette),
        "scenario_sha256": file_sha256(paths.scenario),
        "entries": len(audit_bytes.splitlines()),
    }
    envelope = sign_envelope(AUDIT_PAYLOAD_TYPE, jcs_bytes(statement), signer)
    atomic_write_bytes(paths.audit_dsse, dumps_canonical(envelope.to_json()).encode("utf-8"))


def append_approval(
    store: GoldenStore,
    name: str,
    *,
    signer: Signer,
    approver: str,
    reason: str,
    old_trace_sha256: str | None,
    at: str,
) -> dict[str, Any]:
    """Append a signed approval of the current ``trace.json``/``audit.jsonl`` and return it."""
    paths = store.paths(name)
    if not approver.strip():
        raise SignatureError(f"scenario {name!r}: an approval needs an approver name")
    _check_utc(at, name)
    trace_bytes = _read_required(store, paths, "trace")
    audit_bytes = _read_required(store, paths, "audit")
    existing = paths.approvals.read_bytes() if paths.approvals.exists() else b""
    lines = existing.splitlines()
    broken = approval_link_problems(store.display(paths.approvals), lines)
    if broken:
        raise SignatureError(
            f"refusing to append to a damaged approvals file: {broken[0]}; restore it from "
            "version control first"
        )
    entry: dict[str, Any] = {
        "format_version": APPROVAL_FORMAT_VERSION,
        "scenario": name,
        "counter": len(lines) + 1,
        "approver": approver.strip(),
        "at": at,
        "reason": reason.strip() or DEFAULT_REASON,
        "old_trace_sha256": old_trace_sha256,
        "new_trace_sha256": sha256_hex(trace_bytes),
        "audit_sha256": sha256_hex(audit_bytes),
        "cassette_sha256": file_sha256(paths.cassette),
        "scenario_sha256": file_sha256(paths.scenario),
        "prev_line_sha256": sha256_hex(lines[-1]) if lines else None,
        "keyid": signer.keyid,
    }
    entry["sig"] = base64.b64encode(signer.sign(jcs_bytes(entry))).decode("ascii")
    body = existing if not existing or existing.endswith(b"\n") else existing + b"\n"
    atomic_write_bytes(paths.approvals, body + jcs_bytes(entry) + b"\n")
    return entry


def load_trusted_keys(store: GoldenStore) -> TrustedKeys:
    """The trusted public keys in ``goldens/keys/`` (``SignatureError`` if unreadable)."""
    try:
        return TrustedKeys.load_dir(store.keys_dir)
    except ConfigError as exc:
        raise SignatureError(exc.message) from exc


# --- checks before writing ---------------------------------------------------------------


def _signable_problems(
    store: GoldenStore, paths: GoldenPaths, trace_bytes: bytes, audit_bytes: bytes
) -> list[str]:
    """What stops a golden from being signed (a wrong trace format version raises)."""
    try:
        version = json.loads(trace_bytes).get("format_version")
    except (ValueError, AttributeError):
        version = None
    if version != TRACE_FORMAT_VERSION:
        raise FormatVersionError(
            f"scenario {paths.name!r}: {store.display(paths.trace)} has format_version "
            f"{version!r}, this tool writes {TRACE_FORMAT_VERSION}; re-record with "
            "`harness-replay record`"
        )
    check = GoldenCheck(store, paths, TrustedKeys())
    entries = check.audit_entries(audit_bytes)
    if entries is not None:
        check.check_chain(entries)
        check.check_trace_audit(trace_bytes, entries)
        if audit_jsonl_bytes(entries) != audit_bytes:
            check.problems.append(
                f"{store.display(paths.audit)} is not one canonical JCS line per entry"
            )
    return check.problems


def _read_required(store: GoldenStore, paths: GoldenPaths, which: str) -> bytes:
    path = paths.trace if which == "trace" else paths.audit
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise GoldenMissing(
            f"scenario {paths.name!r} has no {store.display(path)}; record it with "
            "`harness-replay record` first"
        ) from None


def _check_utc(at: str, name: str) -> None:
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() != timedelta(0):
        raise SignatureError(
            f"scenario {name!r}: approval time {at!r} is not an ISO 8601 UTC timestamp "
            "(e.g. 2026-01-01T09:00:00Z)"
        )

