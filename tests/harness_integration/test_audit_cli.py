"""`harness audit verify | seal | checkpoints`, driven as a real subprocess against a SQLite
log written by the real CLI with a signing key. Exit codes: 0 ok, 1 bad log, 2 usage."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.integrity import (
    Ed25519Signer,
    compute_entry_hash,
    write_private_key_pem,
    write_public_key,
)
from tests.support.procs import base_env, harness

pytestmark = [pytest.mark.tier1]

EVERY = 4
SIZE = 11  # checkpoints at 4 and 8, then the seal at 11


@dataclass(frozen=True)
class SealedLog:
    data_dir: Path
    db: Path
    keys: Path
    env: dict[str, str]

    def run(self, *args: str, db: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if db is not None:
            env["HARNESS_DATABASE_URL"] = f"sqlite:///{db.as_posix()}"
        return harness(["audit", *args], env, check=False)

    def tampered(self, *statements: str) -> Path:
        """A copy of the log edited with the append-only triggers dropped."""
        copy = self.db.with_name(f"tampered-{len(list(self.db.parent.glob('tampered-*')))}.db")
        with sqlite3.connect(self.db) as source, sqlite3.connect(copy) as target:
            source.backup(target)  # WAL-safe copy
        with sqlite3.connect(copy) as conn:
            for trigger in ("entries_no_update", "entries_no_delete", "checkpoints_no_update"):
                conn.execute(f"DROP TRIGGER audit_{trigger}")
            for statement in statements:
                conn.execute(statement)
        return copy


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> SealedLog:
    root = tmp_path_factory.mktemp("audit-cli")
    signer = Ed25519Signer.generate()
    write_private_key_pem(root / "audit.pem", signer.private_key)
    keys = root / "keys"
    keys.mkdir()
    write_public_key(keys / "audit-service.pub.json", signer.public_record("audit-service"))
    db = root / "data" / "harness.db"
    env = base_env(root / "data", f"sqlite:///{db.as_posix()}")
    env.update(HARNESS_AUDIT_SIGNING_KEY=str(root / "audit.pem"), HARNESS_AUDIT_CHECKPOINT_EVERY=str(EVERY))
    harness(["db", "upgrade"], env)
    spec = [f"--key=k{i}:submitter" for i in range(5)]
    harness(["tenants", "create", "acme", *spec], env)  # 1 + 5 entries
    harness(["tenants", "create", "globex", *spec[:4]], env)  # 1 + 4 entries
    sealed = harness(["audit", "seal"], env)
    assert f"tree_size {SIZE}" in sealed.stdout
    return SealedLog(root / "data", db, keys, env)


def _one_line(stream: str) -> str:
    lines = stream.strip().splitlines()
    assert len(lines) == 1, stream
    return lines[0]


def test_verify_ok(sealed: SealedLog) -> None:
    done = sealed.run("verify", "--trusted-keys", str(sealed.keys), "--require-sealed")
    assert done.returncode == 0, done.stderr
    line = _one_line(done.stdout)
    assert line.startswith("ok: ") and f"{SIZE} entries" in line and "3 signed checkpoint" in line


def test_verify_without_keys_checks_the_chain_and_says_so(sealed: SealedLog) -> None:
    done = sealed.run("verify")
    assert done.returncode == 0, done.stderr
    assert "chain only" in _one_line(done.stdout)


def test_verify_json(sealed: SealedLog) -> None:
    done = sealed.run("verify", "--trusted-keys", str(sealed.keys), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "ok": True,
        "entries": SIZE,
        "first_bad_seq": None,
        "problem": None,
        "message": f"audit log verified: {SIZE} entries, sealed by 3 signed checkpoint(s)",
        "checkpoints_verified": 3,
        "signatures_checked": True,
    }


def test_checkpoints_lists_every_signed_tree(sealed: SealedLog) -> None:
    done = sealed.run("checkpoints", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [c["tree_size"] for c in listed] == [4, 8, SIZE]
    assert all(len(c["root_hash"]) == 64 and c["keyids"] for c in listed)
    table = sealed.run("checkpoints").stdout.splitlines()
    assert [line.split()[0] for line in table] == ["4", "8", str(SIZE)]


def _rehash(conn: sqlite3.Connection, start: int) -> None:
    rows = conn.execute(
        "SELECT seq, at, actor, tenant, action, target, payload, prev_hash FROM audit_entries "
        "WHERE seq >= ? ORDER BY seq",
        (start - 1,),
    ).fetchall()
    prev = None
    for seq, at, actor, tenant, action, target, payload, prev_hash in rows:
        body = {
            "seq": seq,
            "at": at,
            "actor": actor,
            "tenant": tenant,
            "action": action,
            "target": target,
            "payload": json.loads(payload),
            "prev_hash": prev or prev_hash,
        }
        prev = compute_entry_hash(body)
        conn.execute(
            "UPDATE audit_entries SET prev_hash = ?, entry_hash = ? WHERE seq = ?",
            (body["prev_hash"], prev, seq),
        )


TAMPERS: dict[str, tuple[list[str], int, str]] = {
    "modified": (["UPDATE audit_entries SET actor = 'mallory' WHERE seq = 5"], 5, "modified"),
    "missing": (["DELETE FROM audit_entries WHERE seq = 6"], 6, "missing"),
    "truncated": (["DELETE FROM audit_entries WHERE seq >= 9"], 9, "truncated"),
    "prev_hash edited": (["UPDATE audit_entries SET prev_hash = entry_hash WHERE seq = 3"], 3, "modified"),
    "appended-after-seal": (
        [
            "INSERT INTO audit_entries SELECT seq + 1, at, actor, tenant, action, target, payload, "
            "entry_hash, 'x' || entry_hash FROM audit_entries WHERE seq = 10"
        ],
        SIZE,
        "inserted",
    ),
}


@pytest.mark.parametrize("kind", sorted(TAMPERS))
def test_verify_names_the_first_bad_seq(sealed: SealedLog, kind: str) -> None:
    statements, seq, problem = TAMPERS[kind]
    copy = sealed.tampered(*statements)
    if kind == "appended-after-seal":
        with sqlite3.connect(copy) as conn:
            _rehash(conn, SIZE)
    done = sealed.run("verify", "--trusted-keys", str(sealed.keys), "--require-sealed", db=copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert _one_line(done.stdout).startswith(f"FAILED at seq {seq} ({problem}): ")


def test_verify_json_on_a_bad_log(sealed: SealedLog) -> None:
    copy = sealed.tampered("DELETE FROM audit_entries WHERE seq = 6")
    done = sealed.run("verify", "--trusted-keys", str(sealed.keys), "--json", db=copy)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert (report["ok"], report["first_bad_seq"], report["problem"]) == (False, 6, "missing")
    assert report["entries"] == SIZE - 1 and "seq 6 missing" in report["message"]


def test_a_consistently_rehashed_rewrite_is_caught_by_the_signed_roots(sealed: SealedLog) -> None:
    copy = sealed.tampered("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 5")
    with sqlite3.connect(copy) as conn:
        _rehash(conn, 5)
    chain_only = sealed.run("verify", db=copy)
    assert chain_only.returncode == 0  # the chain alone cannot tell
    done = sealed.run("verify", "--trusted-keys", str(sealed.keys), db=copy)
    assert done.returncode == 1
    assert _one_line(done.stdout).startswith("FAILED at seq 4 (root_mismatch): entries seq 4..7")


def test_a_forged_signature_is_bad_signature(sealed: SealedLog) -> None:
    copy = sealed.tampered()
    with sqlite3.connect(copy) as conn:
        (raw,) = conn.execute("SELECT envelope FROM audit_checkpoints WHERE tree_size = 8").fetchone()
        envelope = json.loads(raw)
        envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][::-1]
        conn.execute("UPDATE audit_checkpoints SET envelope = ? WHERE tree_size = 8", (json.dumps(envelope),))
    done = sealed.run("verify", "--trusted-keys", str(sealed.keys), db=copy)
    assert done.returncode == 1
    assert "(bad_signature)" in _one_line(done.stdout)


def test_from_checkpoint(sealed: SealedLog) -> None:
    keys = ("--trusted-keys", str(sealed.keys))
    done = sealed.run("verify", *keys, "--from-checkpoint", "8", "--require-sealed")
    assert done.returncode == 0, done.stderr
    assert "from the signed checkpoint at tree_size 8" in _one_line(done.stdout)
    assert f"{SIZE - 8} checked link by link" in done.stdout

    after = sealed.tampered("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 9")
    done = sealed.run("verify", *keys, "--from-checkpoint", "8", db=after)
    assert done.returncode == 1
    assert _one_line(done.stdout).startswith("FAILED at seq 9 (modified)")

    # A change under the trusted base does not slip by: the full verifier takes over and names it.
    before = sealed.tampered("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 5")
    done = sealed.run("verify", *keys, "--from-checkpoint", "8", db=before)
    assert done.returncode == 1
    assert _one_line(done.stdout).startswith("FAILED at seq 5 (modified)")

    unknown = sealed.run("verify", *keys, "--from-checkpoint", "5")
    assert unknown.returncode == 2
    assert "no signed checkpoint has tree_size 5 (signed sizes: 4, 8, 11)" in _one_line(unknown.stderr)


USAGE: dict[str, Callable[[SealedLog], list[str]]] = {
    "unknown option": lambda log: ["verify", "--frobnicate"],
    "from-checkpoint without keys": lambda log: ["verify", "--from-checkpoint", "4"],
    "require-sealed without keys": lambda log: ["verify", "--require-sealed"],
    "not a number": lambda log: ["verify", "--trusted-keys", str(log.keys), "--from-checkpoint", "x"],
    "missing key dir": lambda log: ["verify", "--trusted-keys", str(log.keys / "nope")],
    "empty key dir": lambda log: ["verify", "--trusted-keys", str(log.data_dir)],
}


@pytest.mark.parametrize("case", sorted(USAGE))
def test_usage_errors_exit_2_with_one_line(sealed: SealedLog, case: str) -> None:
    done = sealed.run(*USAGE[case](sealed))
    assert done.returncode == 2, done.stdout + done.stderr
    assert _one_line(done.stderr).startswith("error: ")
    assert done.stdout == ""


def test_seal_without_a_key_and_verify_without_a_schema_exit_2(sealed: SealedLog, tmp_path: Path) -> None:
    env = {k: v for k, v in sealed.env.items() if k != "HARNESS_AUDIT_SIGNING_KEY"}
    done = harness(["audit", "seal"], env, check=False)
    assert done.returncode == 2
    assert "HARNESS_AUDIT_SIGNING_KEY" in _one_line(done.stderr)
    empty = sealed.run("verify", db=tmp_path / "empty.db")
    assert empty.returncode == 2
    assert "harness db upgrade" in _one_line(empty.stderr)


def test_verify_help_documents_exit_codes_and_problems() -> None:
    done = harness(["audit", "verify", "--help"], base_env(Path("."), "sqlite://"), check=False)
    assert done.returncode == 0
    for word in ("--from-checkpoint", "--require-sealed", "root_mismatch", "bad_signature", "Exit codes"):
        assert word in done.stdout
