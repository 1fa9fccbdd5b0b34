"""Audit log verification throughput: 100,000 entries, a signed checkpoint every 1,000.

Run: ``.venv/bin/python bench/bench_audit_verify.py [--entries N] [--every N] [--repeat N] [--no-db]``.
Prints figures only. The floor is a bare loop doing the two SHA-256s per entry that
verification cannot avoid (entry hash + Merkle leaf hash) over the same entries' canonical
bytes, timed interleaved with ``verify_chain`` in the same run; the target is verify >= 40%
of the floor's rate. The second half stores the same log in a throwaway SQLite database (bulk insert)
and times ``harness.audit.verify_log`` end to end (rows read + verified), its
``from_checkpoint`` resume, and signing one more checkpoint cold (a fresh process re-reads the
log) and warm (the runtime's cached tree frontier; only the new rows are read).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.integrity import (
    Ed25519Signer,
    Envelope,
    TrustedKeys,
    build_checkpoints,
    leaf_data,
    next_entry,
    verify_chain,
    write_private_key_pem,
    write_public_key,
)


def build_log(size: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for i in range(size):
        previous = next_entry(
            previous,
            at=f"2024-06-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000000Z",
            actor=f"user:{('alice', 'bob', 'carol')[i % 3]}",
            tenant=f"tenant-{i % 7}",
            action=("run.create", "run.approve", "tool.call", "golden.update")[i % 4],
            target=f"run:{i // 10:06d}",
            payload={"n": i, "ok": i % 2 == 0, "note": f"step {i}", "tags": ["a", str(i % 5)]},
        )
        entries.append(previous)
    return entries


def two_sha256_floor(datas: list[bytes]) -> float:
    """Seconds for the bare per-entry hashing verification cannot avoid."""
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for data in datas:
        sha256(data).hexdigest()
        sha256(b"\x00" + data).digest()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-db", action="store_true", help="Skip the database-backed figures.")
    args = parser.parse_args()

    signer = Ed25519Signer.generate()
    started = time.perf_counter()
    entries = build_log(args.entries)
    built = time.perf_counter() - started
    started = time.perf_counter()
    checkpoints = build_checkpoints(
        entries, every=args.every, signer=signer, origin="bench/audit", time_fn=lambda: "2026-01-01T00:00:00Z"
    )
    sealed = time.perf_counter() - started
    trusted = TrustedKeys.from_records([signer.public_record("audit-service")])

    datas = [leaf_data(entry) for entry in entries]
    timings, floor = [], []
    for _ in range(args.repeat):
        floor.append(two_sha256_floor(datas))
        started = time.perf_counter()
        report = verify_chain(entries, checkpoints=checkpoints, trusted=trusted, require_sealed=True)
        timings.append(time.perf_counter() - started)
        if not report.ok:
            raise SystemExit(f"benchmark log failed verification: {report.message}")

    best, median = min(timings), statistics.median(timings)
    print(f"entries                 {args.entries:>12,}")
    print(f"checkpoints             {len(checkpoints):>12,}  (every {args.every:,} + final seal)")
    print(f"build log               {built:>12.3f} s  ({args.entries / built:,.0f} entries/s)")
    print(f"build checkpoints       {sealed:>12.3f} s  ({args.entries / sealed:,.0f} entries/s)")
    print(f"verify_chain best       {best:>12.3f} s  ({args.entries / best:,.0f} entries/s)")
    print(f"verify_chain median     {median:>12.3f} s  ({args.entries / median:,.0f} entries/s)")
    print(f"checkpoints verified    {report.checkpoints_verified:>12,}")
    print(f"floor (2 sha256/entry)  {min(floor):>12.3f} s  ({args.entries / min(floor):,.0f} entries/s)")
    print(f"verify / floor          {min(floor) / best:>12.1%}  (target >= 40%, best vs best, interleaved)")
    if not args.no_db:
        bench_database(entries, checkpoints, signer, every=args.every, repeat=args.repeat)


def bench_database(
    entries: list[dict[str, Any]],
    checkpoints: list[Envelope],
    signer: Ed25519Signer,
    *,
    every: int,
    repeat: int,
) -> None:
    from sqlalchemy import insert, select, update

    from harness.audit import append_audit, verify_log
    from harness.database.connect import unit_of_work
    from harness.database.migrate import upgrade
    from harness.database.models import AuditCheckpoint, AuditEntry, AuditHead
    from harness.integrity import open_checkpoint
    from harness.runtime import build_runtime
    from harness.settings import Settings

    count = len(entries)
    trusted = TrustedKeys.from_records([signer.public_record("audit-service")])
    opened = [open_checkpoint(e, trusted) for e in checkpoints]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_private_key_pem(root / "audit.pem", signer.private_key)
        (root / "keys").mkdir()
        write_public_key(root / "keys" / "audit.pub.json", signer.public_record("audit-service"))
        url = f"sqlite:///{(root / 'harness.db').as_posix()}"
        upgrade(url)

        def runtime() -> Any:
            settings = Settings(
                data_dir=root,
                database_url=url,
                audit_signing_key=root / "audit.pem",
                audit_checkpoint_every=every,
                audit_origin="bench/audit",
            )
            return build_runtime(settings, providers=[])

        rt = runtime()
        started = time.perf_counter()
        with unit_of_work(rt.sessions) as session:
            for i in range(0, count, 10_000):
                session.execute(insert(AuditEntry), entries[i : i + 10_000])
            session.execute(
                insert(AuditCheckpoint),
                [
                    {
                        "tree_size": c.tree_size,
                        "root_hash": c.root_hash,
                        "envelope": e.to_json(),
                        "created_at": c.time,
                    }
                    for c, e in zip(opened, checkpoints, strict=True)
                ],
            )
            session.execute(update(AuditHead).values(next_seq=count, last_hash=entries[-1]["entry_hash"]))
        stored = time.perf_counter() - started
        print(f"store in SQLite         {stored:>12.3f} s  ({count / stored:,.0f} entries/s, bulk insert)")

        def timed(label: str, call: Callable[[], Any]) -> None:
            timings = []
            for _ in range(repeat):
                started = time.perf_counter()
                report = call()
                timings.append(time.perf_counter() - started)
                if not report.ok:
                    raise SystemExit(f"{label} failed: {report.message}")
            best = min(timings)
            print(f"{label:<23} {best:>12.3f} s  ({count / best:,.0f} entries/s, best of {repeat})")

        keys = root / "keys"
        timed("verify_log chain only", lambda: verify_log(rt))
        timed("verify_log signed", lambda: verify_log(rt, trusted_dir=keys, require_sealed=True))
        base = opened[-2].tree_size if len(opened) > 1 else opened[-1].tree_size
        timed(f"  --from-checkpoint {base}", lambda: verify_log(rt, trusted_dir=keys, from_checkpoint=base))

        # Signing: append up to the next multiple of `every`, whose append signs a checkpoint.
        def append_to_next_checkpoint(target: Any) -> float:
            with unit_of_work(target.sessions) as session:
                next_seq = session.execute(select(AuditHead.next_seq)).scalar_one()
                missing = every - next_seq % every
            for _ in range(missing - 1):
                with unit_of_work(target.sessions) as session:
                    append_audit(session, target, actor="bench", tenant="t", action="a", target="x")
            started = time.perf_counter()
            with unit_of_work(target.sessions) as session:
                append_audit(session, target, actor="bench", tenant="t", action="a", target="x")
            return time.perf_counter() - started

        signing = runtime()
        cold = append_to_next_checkpoint(signing)
        warm = min(append_to_next_checkpoint(signing) for _ in range(repeat))
        print(f"checkpointing append    {cold:>12.3f} s  cold (fresh process re-reads {count:,} rows)")
        print(f"checkpointing append    {warm:>12.3f} s  warm (cached frontier, reads {every:,} rows)")
        rt.close()
        signing.close()


if __name__ == "__main__":
    main()
