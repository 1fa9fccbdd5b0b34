"""The service signs a checkpoint every ``audit_checkpoint_every`` entries and on ``seal``;
an auditor holding only the public key verifies every one of them, their consistency, and the
log under them, and a rewritten copy of the log is caught at the right range."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from harness.audit import load_entries, seal, verify_log
from harness.database.connect import unit_of_work
from harness.database.models import AuditCheckpoint, AuditHead
from harness.errors import AuditIntegrityError, ConfigError
from harness.integrity import (
    Checkpoint,
    Ed25519Signer,
    Envelope,
    Problem,
    TrustedKeys,
    compute_entry_hash,
    consistency_proof,
    entry_body,
    leaf_data,
    leaf_hash,
    open_checkpoint,
    root_from_leaf_hashes,
    sign_checkpoint,
    verify_chain,
    verify_consistency,
    write_private_key_pem,
    write_public_key,
)
from harness.runtime import Runtime

pytestmark = [pytest.mark.tier1, pytest.mark.security]

EVERY = 4


@dataclass(frozen=True)
class ServiceKey:
    pem: Path
    trusted_dir: Path
    trusted: TrustedKeys  # the public key only


@pytest.fixture
def service_key(tmp_path: Path) -> ServiceKey:
    signer = Ed25519Signer.generate()
    write_private_key_pem(tmp_path / "audit.pem", signer.private_key)
    keys = tmp_path / "keys"
    keys.mkdir()
    record = signer.public_record("audit-service")
    write_public_key(keys / "audit-service.pub.json", record)
    return ServiceKey(tmp_path / "audit.pem", keys, TrustedKeys.from_records([record]))


@pytest.fixture
def rt(database_url: str, make_runtime: Callable[..., Runtime], service_key: ServiceKey) -> Runtime:
    return make_runtime(database_url, audit_signing_key=service_key.pem, audit_checkpoint_every=EVERY)


def _stored(rt: Runtime) -> tuple[list[dict[str, Any]], list[Envelope]]:
    with unit_of_work(rt.sessions) as session:
        rows = session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size)).scalars()
        envelopes = [Envelope.from_json(row.envelope) for row in rows]
        return load_entries(session), envelopes


def _act(rt: Runtime, run_factory: Callable[..., str], times: int) -> None:
    for _ in range(times):
        run_factory(rt, tenant="acme")


def _seal(rt: Runtime) -> AuditCheckpoint | None:
    with unit_of_work(rt.sessions) as session:
        return seal(session, rt)


def test_a_checkpoint_every_n_entries_verifies_with_the_public_key_only(
    rt: Runtime, run_factory: Callable[..., str], service_key: ServiceKey
) -> None:
    _act(rt, run_factory, 6)
    entries, envelopes = _stored(rt)
    assert len(entries) >= 3 * EVERY
    checkpoints = [open_checkpoint(e, service_key.trusted) for e in envelopes]
    assert [c.tree_size for c in checkpoints] == list(range(EVERY, len(entries) + 1, EVERY))
    leaves = [leaf_hash(leaf_data(e)) for e in entries]
    for cp in checkpoints:
        assert cp.origin == rt.settings.audit_origin
        assert cp.root_hash == root_from_leaf_hashes(leaves[: cp.tree_size]).hex()
    for old, new in itertools.pairwise(checkpoints):
        proof = consistency_proof(leaves, old.tree_size, new.tree_size)
        assert verify_consistency(old.tree_size, new.tree_size, old.root_bytes, new.root_bytes, proof)
    report = verify_log(rt, trusted_dir=service_key.trusted_dir)
    assert report.ok, report.message
    assert report.checkpoints_verified == len(checkpoints)


def test_seal_covers_the_whole_log_and_later_checkpoints_extend_it(
    rt: Runtime, run_factory: Callable[..., str], service_key: ServiceKey
) -> None:
    _act(rt, run_factory, 2)
    size = len(_stored(rt)[0])
    if size % EVERY == 0:  # make sure the seal is not also a periodic checkpoint
        _act(rt, run_factory, 1)
        size = len(_stored(rt)[0])
    unsealed = verify_log(rt, trusted_dir=service_key.trusted_dir, require_sealed=True)
    assert (unsealed.ok, unsealed.problem) == (False, Problem.INSERTED)

    sealed = _seal(rt)
    assert sealed is not None and sealed.tree_size == size
    again = _seal(rt)
    assert again is not None and again.tree_size == size  # idempotent, no second row
    assert verify_log(rt, trusted_dir=service_key.trusted_dir, require_sealed=True).ok

    _act(rt, run_factory, 2)  # the next periodic checkpoint must extend the seal
    entries, envelopes = _stored(rt)
    sizes = [open_checkpoint(e, service_key.trusted).tree_size for e in envelopes]
    assert size in sizes and sizes == sorted(set(sizes))
    assert _seal(rt) is not None
    report = verify_log(rt, trusted_dir=service_key.trusted_dir, require_sealed=True)
    assert report.ok, report.message
    assert report.entries == len(entries)


def test_seal_needs_a_signing_key(database_url: str, make_runtime: Callable[..., Runtime]) -> None:
    unsigned = make_runtime(database_url)
    with pytest.raises(ConfigError, match="HARNESS_AUDIT_SIGNING_KEY"):
        _seal(unsigned)


def test_a_fresh_process_continues_the_signed_history(
    rt: Runtime,
    run_factory: Callable[..., str],
    service_key: ServiceKey,
    make_runtime: Callable[..., Runtime],
    database_url: str,
) -> None:
    """A second runtime has no cached tree frontier: it rebuilds from the rows and still extends."""
    _act(rt, run_factory, 3)
    other = make_runtime(
        database_url, audit_signing_key=service_key.pem, audit_checkpoint_every=EVERY, seed=99
    )
    _act(other, run_factory, 3)
    _act(rt, run_factory, 3)  # rt's cached frontier is now stale: it must notice and rebuild
    assert _seal(rt) is not None
    report = verify_log(rt, trusted_dir=service_key.trusted_dir, require_sealed=True)
    assert report.ok, report.message


def test_signer_refuses_to_extend_a_rewritten_log(
    rt: Runtime,
    run_factory: Callable[..., str],
    service_key: ServiceKey,
    make_runtime: Callable[..., Runtime],
    database_url: str,
) -> None:
    _act(rt, run_factory, 3)
    with rt.engine.begin() as conn:
        _drop_entry_triggers(conn)
        conn.execute(text("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 1"))
    fresh = make_runtime(database_url, audit_signing_key=service_key.pem, audit_checkpoint_every=EVERY)
    with pytest.raises(AuditIntegrityError, match="refusing to sign"):
        _seal(fresh)
    with unit_of_work(rt.sessions) as session:
        head = session.get(AuditHead, 1)
        assert head is not None
        assert session.get(AuditCheckpoint, head.next_seq) is None
    report = verify_log(rt, trusted_dir=service_key.trusted_dir)
    assert (report.problem, report.first_bad_seq) == (Problem.MODIFIED, 1)


def test_a_forged_checkpoint_row_is_not_the_signers_baseline(
    rt: Runtime, run_factory: Callable[..., str], service_key: ServiceKey
) -> None:
    """Rows are insertable; a checkpoint signed by someone else is ignored and then reported."""
    _act(rt, run_factory, 2)
    entries, _ = _stored(rt)
    size = len(entries) + (1 if len(entries) % EVERY == 0 else 0)
    if size > len(entries):
        _act(rt, run_factory, 1)
    mallory = Ed25519Signer.generate()
    forged = Checkpoint(
        origin=rt.settings.audit_origin, tree_size=size, root_hash="a" * 64, last_seq=size - 1, time="t"
    )
    envelope = sign_checkpoint(forged, mallory, previous=None, consistency_proof=None)
    with unit_of_work(rt.sessions) as session:
        session.add(
            AuditCheckpoint(tree_size=size, root_hash="a" * 64, envelope=envelope.to_json(), created_at="t")
        )
    _act(rt, run_factory, 2)  # crosses a periodic checkpoint, which must extend the real history
    report = verify_log(rt, trusted_dir=service_key.trusted_dir)
    assert report.problem == Problem.BAD_SIGNATURE
    _, envelopes = _stored(rt)
    genuine = []
    for env in envelopes:
        try:
            genuine.append(open_checkpoint(env, service_key.trusted))
        except AuditIntegrityError:
            continue
    assert len(genuine) == len(envelopes) - 1
    assert max(c.tree_size for c in genuine) > size


def test_a_rewritten_copy_is_caught_at_the_right_range(
    rt: Runtime, run_factory: Callable[..., str], service_key: ServiceKey
) -> None:
    _act(rt, run_factory, 4)
    assert _seal(rt) is not None
    entries, envelopes = _stored(rt)
    trusted = service_key.trusted
    assert verify_chain(entries, checkpoints=envelopes, trusted=trusted, require_sealed=True).ok

    target = EVERY + 1  # inside the second checkpoint range, seqs EVERY..2*EVERY-1

    edited = [dict(e) for e in entries]
    edited[target]["payload"] = {**edited[target]["payload"], "model": "forged"}
    report = verify_chain(edited, checkpoints=envelopes, trusted=trusted)
    assert (report.problem, report.first_bad_seq) == (Problem.MODIFIED, target)

    rehashed = _rehash_from(edited, target)
    assert verify_chain(rehashed).ok  # the chain alone is fooled by a consistent rewrite
    report = verify_chain(rehashed, checkpoints=envelopes, trusted=trusted)
    assert (report.problem, report.first_bad_seq) == (Problem.ROOT_MISMATCH, EVERY)
    assert f"seq {EVERY}..{2 * EVERY - 1}" in report.message

    truncated = entries[: len(entries) - 2]
    report = verify_chain(truncated, checkpoints=envelopes, trusted=trusted)
    assert (report.problem, report.first_bad_seq) == (Problem.TRUNCATED, len(entries) - 2)

    missing = entries[:target] + entries[target + 1 :]
    report = verify_chain(missing, checkpoints=envelopes, trusted=trusted)
    assert (report.problem, report.first_bad_seq) == (Problem.MISSING, target)


def _rehash_from(entries: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    out = [dict(e) for e in entries]
    for i in range(start, len(out)):
        if i:
            out[i]["prev_hash"] = out[i - 1]["entry_hash"]
        out[i]["entry_hash"] = compute_entry_hash(entry_body(out[i]))
    return out


def _drop_entry_triggers(conn: Any) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP TRIGGER audit_entries_append_only ON audit_entries"))
    else:
        conn.execute(text("DROP TRIGGER audit_entries_no_update"))


def test_a_checkpoint_is_also_signed_when_the_last_one_is_older_than_the_interval(
    database_url: str,
    make_runtime: Callable[..., Runtime],
    run_factory: Callable[..., str],
    service_key: ServiceKey,
) -> None:
    """Every N entries *or* T seconds: a quiet log still gets a fresh signed root."""
    from freezegun import freeze_time

    with freeze_time("2026-03-01T12:00:00Z") as frozen:
        rt = make_runtime(
            database_url,
            audit_signing_key=service_key.pem,
            audit_checkpoint_every=1000,
            audit_checkpoint_seconds=60,
        )
        _act(rt, run_factory, 1)
        assert _stored(rt)[1] == []  # neither 1000 entries nor 60 s yet
        size = len(_stored(rt)[0])
        frozen.tick(61)
        _act(rt, run_factory, 1)
        _entries, envelopes = _stored(rt)
        assert [open_checkpoint(e, service_key.trusted).tree_size for e in envelopes] == [size + 1]
        frozen.tick(30)
        _act(rt, run_factory, 1)
        assert len(_stored(rt)[1]) == 1  # 30 s since the last one: not yet
        frozen.tick(31)
        _act(rt, run_factory, 1)
        assert len(_stored(rt)[1]) == 2
        assert verify_log(rt, trusted_dir=service_key.trusted_dir).ok
