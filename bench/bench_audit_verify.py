"""Audit log verification throughput: 100,000 entries, a signed checkpoint every 1,000.

Run: ``.venv/bin/python bench/bench_audit_verify.py [--entries N] [--every N] [--repeat N]``.
Prints figures only; the target is >= 100k entries/s (hashing-bound, one signature check per
checkpoint).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from harness.integrity import (
    Ed25519Signer,
    TrustedKeys,
    build_checkpoints,
    next_entry,
    verify_chain,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    signer = Ed25519Signer.generate()
    started = time.perf_counter()
    entries = build_log(args.entries)
    built = time.perf_counter() - started
    started = time.perf_counter()
    checkpoints = build_checkpoints(
        entries, every=args.every, signer=signer, origin="bench/audit", time_fn=lambda: "t"
    )
    sealed = time.perf_counter() - started
    trusted = TrustedKeys.from_records([signer.public_record("audit-service")])

    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        report = verify_chain(
            entries, checkpoints=checkpoints, trusted=trusted, require_sealed=True
        )
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


if __name__ == "__main__":
    main()
