"""Sign golden audit logs, record approvals, and verify both with public keys only.

``audit.dsse.json`` is a DSSE envelope over a statement that pins ``trace.json`` and
``audit.jsonl`` by SHA-256. ``approvals.jsonl`` is append-only: each line is the JCS bytes
of an approval carrying ``prev_line_sha256`` (SHA-256 of the previous line's bytes, without
its newline) and an Ed25519 signature over the JCS of the approval without ``sig``.
Trust comes from ``goldens/keys/`` alone; a ``keyid`` only names which key to try first.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from harness.canonical import dumps_canonical, jcs_bytes, sha256_hex
from harness.errors import AuditIntegrityError, ConfigError
from harness.integrity import (
    Ed25519Signer,
    Envelope,
    Signer,
    TrustedKeys,
    load_signer,
    sign_envelope,
    verify_chain,
    verify_envelope,
)
from replay.errors import FormatVersionError, GoldenMissing, SignatureError
from replay.store import GoldenPaths, GoldenStore, atomic_write_bytes, audit_jsonl_bytes

__all__ = [
    "APPROVAL_FORMAT_VERSION",
    "AUDIT_PAYLOAD_TYPE",
    "DEFAULT_REASON",
    "STATEMENT_FORMAT_VERSION",
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

AUDIT_PAYLOAD_TYPE: Final = "application/vnd.harness.audit-golden+json"
STATEMENT_FORMAT_VERSION: Final = 1
APPROVAL_FORMAT_VERSION: Final = 1
TRACE_FORMAT_VERSION: Final = 1
VERIFY_FORMAT_VERSION: Final = 1
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
            "outside the repo; create one with `harness keys generate`)"
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
    broken = _approval_link_problems(store.display(paths.approvals), lines)
    if broken:
        raise SignatureError(
            f"refusing to append to a damaged approvals file: {broken[0]}; restore it from "
            "version control first"
        )
    entry: dict[str, Any] = {
        "format_version": APPROVAL_FORMAT_VERSION,
        "scenario": name,
        "approver": approver.strip(),
        "at": at,
        "reason": reason.strip() or DEFAULT_REASON,
        "old_trace_sha256": old_trace_sha256,
        "new_trace_sha256": sha256_hex(trace_bytes),
        "audit_sha256": sha256_hex(audit_bytes),
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


# --- verifying ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldenVerification:
    """What an auditor learns about one golden: who signed it, and everything wrong with it."""

    scenario: str
    ok: bool
    signer: str | None  # name of the trusted key that signed audit.dsse.json
    entries: int  # audit entries in audit.jsonl
    problems: tuple[str, ...] = ()
    approvals: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "scenario": self.scenario,
            "ok": self.ok,
            "signer": self.signer,
            "entries": self.entries,
            "approvals": self.approvals,
            "problems": list(self.problems),
        }


def verify_golden(store: GoldenStore, name: str, trusted: TrustedKeys) -> GoldenVerification:
    """Check one golden's signature, digests, audit chain and approvals against ``trusted``."""
    paths = store.paths(name)
    check = _Check(store, paths, trusted)
    check.run()
    return GoldenVerification(
        scenario=name,
        ok=not check.problems,
        signer=check.signer,
        entries=check.entries,
        problems=tuple(check.problems),
        approvals=check.approvals,
    )


def verify_all(store: GoldenStore, trusted: TrustedKeys) -> list[GoldenVerification]:
    """:func:`verify_golden` for every scenario, sorted by name."""
    return [verify_golden(store, name, trusted) for name in store.scenario_names()]


def render_verify_table(results: Sequence[GoldenVerification]) -> str:
    """A table (scenario, signer, entries, status), then every problem, then a summary line."""
    header = ("scenario", "signer", "entries", "status")
    rows = [
        (
            r.scenario,
            r.signer or "-",
            str(r.entries),
            "ok" if r.ok else f"FAILED ({len(r.problems)} problem{'s' if len(r.problems) != 1 else ''})",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if i == 2 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths)), *(line(row) for row in rows)]
    failed = [r for r in results if not r.ok]
    if failed:
        out += ["", "problems:"]
        for result in failed:
            out += [f"  {result.scenario}: {problem}" for problem in result.problems]
    noun = "golden" if len(results) == 1 else "goldens"
    out += ["", f"{len(results)} {noun}: {len(results) - len(failed)} verified, {len(failed)} failed"]
    return "\n".join(out) + "\n"


def verify_json(results: Sequence[GoldenVerification]) -> str:
    """Canonical JSON: overall ``ok`` and each golden's verdict."""
    return dumps_canonical(
        {
            "format_version": VERIFY_FORMAT_VERSION,
            "ok": all(r.ok for r in results),
            "goldens": [r.to_json() for r in results],
        }
    )


class _Check:
    """Collects every problem with one golden (not just the first)."""

    def __init__(self, store: GoldenStore, paths: GoldenPaths, trusted: TrustedKeys) -> None:
        self.store, self.paths, self.trusted = store, paths, trusted
        self.problems: list[str] = []
        self.signer: str | None = None
        self.entries = 0
        self.approvals = 0
        self.keys = store.display(store.keys_dir)

    def show(self, path: Path) -> str:
        return self.store.display(path)

    def run(self) -> None:
        paths = self.paths
        trace_bytes = self._read(paths.trace, "the golden was never recorded")
        audit_bytes = self._read(paths.audit, "the golden has no audit log; re-record it")
        self._check_envelope(trace_bytes, audit_bytes)
        if audit_bytes is not None:
            entries = self.audit_entries(audit_bytes)
            if entries is not None:
                self.entries = len(entries)
                self.check_chain(entries)
                if trace_bytes is not None:
                    self.check_trace_audit(trace_bytes, entries)
        self._check_approvals(trace_bytes, audit_bytes)

    def _read(self, path: Path, why: str) -> bytes | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.problems.append(f"{self.show(path)} is missing: {why}")
            return None
        return data

    # audit.jsonl and trace.json

    def audit_entries(self, audit_bytes: bytes) -> list[dict[str, Any]] | None:
        entries: list[dict[str, Any]] = []
        for number, raw in enumerate(audit_bytes.splitlines(), start=1):
            try:
                entry = json.loads(raw)
            except ValueError as exc:
                self.problems.append(f"{self.show(self.paths.audit)} line {number} is not JSON: {exc}")
                return None
            if not isinstance(entry, dict):
                self.problems.append(
                    f"{self.show(self.paths.audit)} line {number} is not a JSON object"
                )
                return None
            entries.append(entry)
        return entries

    def check_chain(self, entries: list[dict[str, Any]]) -> None:
        report = verify_chain(entries)
        if not report.ok:
            seq = "?" if report.first_bad_seq is None else report.first_bad_seq
            self.problems.append(
                f"audit chain broken at seq {seq}: {report.problem} ({report.message})"
            )

    def check_trace_audit(self, trace_bytes: bytes, entries: list[dict[str, Any]]) -> None:
        trace_name = self.show(self.paths.trace)
        try:
            trace = json.loads(trace_bytes)
        except ValueError as exc:
            self.problems.append(f"{trace_name} is not valid JSON: {exc}")
            return
        if not isinstance(trace, dict):
            self.problems.append(f"{trace_name} is not a JSON object")
            return
        version = trace.get("format_version")
        if version != TRACE_FORMAT_VERSION:
            self.problems.append(
                f"{trace_name} has format_version {version!r}, this tool reads "
                f"{TRACE_FORMAT_VERSION}; re-record with `harness-replay record`"
            )
            return
        section = trace.get("audit", [])
        if not isinstance(section, list):
            self.problems.append(f"{trace_name}'s audit section is not a list")
            return
        for index, (ours, theirs) in enumerate(zip(section, entries, strict=False)):
            if not _json_equal(ours, theirs):
                seq = theirs.get("seq", index)
                self.problems.append(
                    f"{trace_name}'s audit section differs from audit.jsonl at seq {seq} "
                    "(one of them was edited by hand)"
                )
                return
        if len(section) != len(entries):
            self.problems.append(
                f"{trace_name}'s audit section has {len(section)} entries but audit.jsonl has "
                f"{len(entries)} (entries were added or removed by hand)"
            )

    # audit.dsse.json

    def _check_envelope(self, trace_bytes: bytes | None, audit_bytes: bytes | None) -> None:
        dsse_name = self.show(self.paths.audit_dsse)
        raw = self._read(self.paths.audit_dsse, "the golden was never signed")
        if raw is None:
            return
        try:
            envelope = Envelope.from_json(json.loads(raw))
        except ValueError as exc:
            self.problems.append(f"{dsse_name} is not valid JSON: {exc}")
            return
        except AuditIntegrityError as exc:
            self.problems.append(f"{dsse_name}: {exc.message}")
            return
        if envelope.payload_type != AUDIT_PAYLOAD_TYPE:
            self.problems.append(
                f"{dsse_name} has payloadType {envelope.payload_type!r}, expected "
                f"{AUDIT_PAYLOAD_TYPE!r}"
            )
            return
        try:
            verified = verify_envelope(envelope, self.trusted, payload_type=AUDIT_PAYLOAD_TYPE)
        except AuditIntegrityError:
            self.problems.append(self._untrusted(dsse_name, envelope))
            return
        self.signer = verified.key.name
        if verified.claimed_keyid != verified.keyid:
            self.problems.append(
                f"{dsse_name} names key {verified.claimed_keyid} but was signed by trusted key "
                f"{verified.key.name!r} ({verified.keyid}); re-sign it"
            )
        self._check_statement(dsse_name, verified.payload, trace_bytes, audit_bytes)

    def _untrusted(self, dsse_name: str, envelope: Envelope) -> str:
        if not envelope.signatures:
            return f"{dsse_name} carries no signature"
        if not len(self.trusted):
            return f"{dsse_name} cannot be checked: there are no trusted keys in {self.keys}"
        known = {record.keyid: record.name for record in self.trusted}
        claims = [s.keyid for s in envelope.signatures]
        named = [keyid for keyid in claims if keyid in known]
        if named:
            return (
                f"{dsse_name} names trusted key {named[0]} ({known[named[0]]!r}) but its "
                "signature does not verify with that key: it was signed by another key or the "
                "signed statement was altered"
            )
        return (
            f"{dsse_name} is signed by key {', '.join(claims)} which is not in {self.keys} "
            "(an unapproved key); if the signer is legitimate, add its public key there"
        )

    def _check_statement(
        self, dsse_name: str, payload: bytes, trace_bytes: bytes | None, audit_bytes: bytes | None
    ) -> None:
        try:
            statement = json.loads(payload)
        except ValueError as exc:
            self.problems.append(f"{dsse_name}'s signed statement is not JSON: {exc}")
            return
        if not isinstance(statement, dict):
            self.problems.append(f"{dsse_name}'s signed statement is not a JSON object")
            return
        if statement.get("format_version") != STATEMENT_FORMAT_VERSION:
            self.problems.append(
                f"{dsse_name}'s statement has format_version "
                f"{statement.get('format_version')!r}; re-sign with this version"
            )
            return
        if statement.get("scenario") != self.paths.name:
            self.problems.append(
                f"{dsse_name} was signed for scenario {statement.get('scenario')!r}, not "
                f"{self.paths.name!r} (copied from another golden)"
            )
        if audit_bytes is not None:
            if statement.get("audit_sha256") != sha256_hex(audit_bytes):
                self.problems.append(
                    f"{self.show(self.paths.audit)} was edited after signing (sha256 "
                    f"{sha256_hex(audit_bytes)} differs from the signed statement's "
                    f"{statement.get('audit_sha256')})"
                )
            elif statement.get("entries") != len(audit_bytes.splitlines()):
                self.problems.append(
                    f"{dsse_name} states {statement.get('entries')!r} entries but "
                    f"audit.jsonl has {len(audit_bytes.splitlines())}"
                )
        if trace_bytes is not None and statement.get("trace_sha256") != sha256_hex(trace_bytes):
            self.problems.append(
                f"{self.show(self.paths.trace)} was edited after signing (sha256 "
                f"{sha256_hex(trace_bytes)} differs from the signed statement's "
                f"{statement.get('trace_sha256')})"
            )

    # approvals.jsonl

    def _check_approvals(self, trace_bytes: bytes | None, audit_bytes: bytes | None) -> None:
        name = self.show(self.paths.approvals)
        raw = self._read(self.paths.approvals, "nobody approved this golden")
        if raw is None:
            return
        lines = raw.splitlines()
        self.approvals = len(lines)
        if not lines:
            self.problems.append(f"{name} is empty: nobody approved this golden")
            return
        self.problems += _approval_link_problems(name, lines)
        latest: tuple[int, dict[str, Any]] | None = None
        for number, line in enumerate(lines, start=1):
            approval = self._approval(name, number, line)
            if approval is not None:
                latest = (number, approval) if number == len(lines) else latest
        if latest is None:
            return
        number, approval = latest
        who = f"(line {number}, by {approval.get('approver')!r} at {approval.get('at')})"
        if trace_bytes is not None and approval.get("new_trace_sha256") != sha256_hex(trace_bytes):
            self.problems.append(
                f"the latest approval {who} names trace sha256 {approval.get('new_trace_sha256')} "
                f"but {self.show(self.paths.trace)} is {sha256_hex(trace_bytes)} (changed "
                "without approval)"
            )
        if audit_bytes is not None and approval.get("audit_sha256") != sha256_hex(audit_bytes):
            self.problems.append(
                f"the latest approval {who} names audit sha256 {approval.get('audit_sha256')} "
                f"but {self.show(self.paths.audit)} is {sha256_hex(audit_bytes)} (changed "
                "without approval)"
            )

    def _approval(self, name: str, number: int, line: bytes) -> dict[str, Any] | None:
        """Parse and check one approval line; None when it cannot be parsed."""
        where = f"{name} line {number}"
        try:
            approval = json.loads(line)
        except ValueError as exc:
            self.problems.append(f"{where} is not JSON: {exc}")
            return None
        if not isinstance(approval, dict):
            self.problems.append(f"{where} is not a JSON object")
            return None
        who = f"{where} (approver {approval.get('approver')!r})"
        if approval.get("format_version") != APPROVAL_FORMAT_VERSION:
            self.problems.append(
                f"{who} has format_version {approval.get('format_version')!r}, expected "
                f"{APPROVAL_FORMAT_VERSION}"
            )
        if approval.get("scenario") != self.paths.name:
            self.problems.append(
                f"{who} approves scenario {approval.get('scenario')!r}, not {self.paths.name!r}"
            )
        self._check_approval_signature(who, approval)
        return approval

    def _check_approval_signature(self, who: str, approval: dict[str, Any]) -> None:
        keyid = approval.get("keyid")
        sig = approval.get("sig")
        if not isinstance(sig, str):
            self.problems.append(f"{who} is not signed")
            return
        try:
            signature = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            self.problems.append(f"{who} has a signature that is not base64")
            return
        body = {key: value for key, value in approval.items() if key != "sig"}
        try:
            message = jcs_bytes(body)
        except (TypeError, ValueError) as exc:
            self.problems.append(f"{who} is not canonical JSON: {exc}")
            return
        hint = keyid if isinstance(keyid, str) else None
        record = self.trusted.verify(message, signature, keyid_hint=hint)
        if record is None:
            known = {r.keyid: r.name for r in self.trusted}
            if hint in known:
                self.problems.append(
                    f"{who}: its signature does not verify with trusted key {hint} "
                    f"({known[hint]!r}) that it names: the approval was forged or edited"
                )
            else:
                self.problems.append(
                    f"{who} is signed by key {keyid} which is not in {self.keys} "
                    "(an unapproved key)"
                )
        elif record.keyid != keyid:
            self.problems.append(
                f"{who} names key {keyid} but was signed by trusted key {record.name!r} "
                f"({record.keyid})"
            )


def _approval_link_problems(name: str, lines: Sequence[bytes]) -> list[str]:
    """Hash-chain faults in approvals: each line's ``prev_line_sha256`` names the line before."""
    problems: list[str] = []
    digests = [sha256_hex(line) for line in lines]
    for index, line in enumerate(lines):
        number = index + 1
        try:
            approval = json.loads(line)
        except ValueError:
            continue  # reported by the line check
        prev = approval.get("prev_line_sha256") if isinstance(approval, dict) else None
        if index == 0:
            if prev is not None:
                problems.append(
                    f"{name} line 1 is not the first approval (its prev_line_sha256 is set): "
                    "earlier approvals were deleted or the lines were re-ordered"
                )
            continue
        if prev == digests[index - 1]:
            continue
        if prev in digests:
            detail = (
                f"it follows line {digests.index(prev) + 1}: the lines were re-ordered"
            )
        elif prev is None:
            detail = "it claims to be the first approval"
        else:
            detail = "an approval before it was deleted or edited"
        problems.append(
            f"{name} line {number} is out of order (its prev_line_sha256 does not match line "
            f"{index}): {detail}"
        )
    return problems


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
    check = _Check(store, paths, TrustedKeys())
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


def _json_equal(a: Any, b: Any) -> bool:
    """Strict JSON equality (``true`` is not ``1``), as the canonical bytes would compare."""
    try:
        return jcs_bytes(a) == jcs_bytes(b)
    except (TypeError, ValueError):
        return bool(a == b)
