"""Verify goldens with public keys only: DSSE signature, pinned digests, audit chain, approvals."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness.canonical import dumps_canonical, jcs_bytes, sha256_hex
from harness.errors import AuditIntegrityError
from harness.integrity import (
    Envelope,
    TrustedKeys,
    verify_chain,
    verify_envelope,
)
from replay.store import GoldenPaths, GoldenStore

AUDIT_PAYLOAD_TYPE: Final = "application/vnd.harness.audit-golden+json"
STATEMENT_FORMAT_VERSION: Final = 2  # v2 binds cassette and scenario.yaml too
APPROVAL_FORMAT_VERSION: Final = 2  # v2 adds the per-scenario counter and those digests
TRACE_FORMAT_VERSION: Final = 1
VERIFY_FORMAT_VERSION: Final = 1


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
    check = GoldenCheck(store, paths, trusted)
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


class GoldenCheck:
    """Collects every problem with one golden (not just the first)."""

    def __init__(
        self, store: GoldenStore, paths: GoldenPaths, trusted: TrustedKeys, *, bind_inputs: bool = True
    ) -> None:
        self.store, self.paths, self.trusted = store, paths, trusted
        self.bind_inputs = bind_inputs  # check the cassette and scenario.yaml digests too
        self.problems: list[str] = []
        self.signer: str | None = None
        self.signer_keyid: str | None = None
        self.approval_keyids: list[str | None] = []  # the trusted key behind each approval line
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
        self.signer_keyid = verified.keyid
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
        for key, path in self._inputs():
            now = file_sha256(path)
            if statement.get(key) != now:
                self.problems.append(
                    f"{self.show(path)} changed after signing (sha256 {now} differs from the "
                    f"signed statement's {statement.get(key)}); re-record and review it"
                )

    def _inputs(self) -> tuple[tuple[str, Path], ...]:
        if not self.bind_inputs:
            return ()
        return (("cassette_sha256", self.paths.cassette), ("scenario_sha256", self.paths.scenario))

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
        self.problems += approval_link_problems(name, lines)
        self.problems += approval_counter_problems(name, lines)
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
        for key, path in self._inputs():
            now = file_sha256(path)
            if approval.get(key) != now:
                self.problems.append(
                    f"the latest approval {who} names {key.split('_')[0]} sha256 {approval.get(key)} "
                    f"but {self.show(path)} is {now} (changed without approval)"
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
            self.approval_keyids.append(None)
            self.problems.append(f"{who} is not signed")
            return
        try:
            signature = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            self.approval_keyids.append(None)
            self.problems.append(f"{who} has a signature that is not base64")
            return
        body = {key: value for key, value in approval.items() if key != "sig"}
        try:
            message = jcs_bytes(body)
        except (TypeError, ValueError) as exc:
            self.approval_keyids.append(None)
            self.problems.append(f"{who} is not canonical JSON: {exc}")
            return
        hint = keyid if isinstance(keyid, str) else None
        record = self.trusted.verify(message, signature, keyid_hint=hint)
        self.approval_keyids.append(None if record is None else record.keyid)
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


def approval_link_problems(name: str, lines: Sequence[bytes]) -> list[str]:
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

def approval_counter_problems(name: str, lines: Sequence[bytes]) -> list[str]:
    """Each approval's ``counter`` is its line number: strictly increasing by one, from 1."""
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        try:
            approval = json.loads(line)
        except ValueError:
            continue  # reported by the line check
        counter = approval.get("counter") if isinstance(approval, dict) else None
        if counter != number:
            problems.append(
                f"{name} line {number} has counter {counter!r}, expected {number} (counters grow "
                "by one per approval; a different value means lines were removed or replayed)"
            )
    return problems


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's bytes, or None when it does not exist."""
    try:
        return sha256_hex(path.read_bytes())
    except FileNotFoundError:
        return None


def _json_equal(a: Any, b: Any) -> bool:
    """Strict JSON equality (``true`` is not ``1``), as the canonical bytes would compare."""
    try:
        return jcs_bytes(a) == jcs_bytes(b)
    except (TypeError, ValueError):
        return bool(a == b)
