"""POST /api/harness/run against a bare FastAPI endpoint returning the same JSON, SQLite and PostgreSQL.

Run: ``.venv/bin/python bench/bench_api.py [--requests N] [--concurrency C] [--rounds R]
[--backend sqlite|postgres|both]``.

Both servers are real processes on loopback (``harness serve``; ``bench/_bare_api.py``, same
uvicorn settings). Rounds alternate bare / harness so machine noise hits both alike; each round
sends N POSTs from C client threads. Prints, per backend, each side's best throughput and
median p99, the throughput ratio (target >= 70% on SQLite, >= 60% on PostgreSQL) and the p99
ratio (target <= 1.5x). Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import db, procs  # noqa: E402  (bench reuses the tests' process helpers)

BODY = {"task": "summarise the workspace"}


@contextmanager
def bare_server(log: Path) -> Iterator[str]:
    port = procs.free_port()
    with procs.process([sys.executable, str(ROOT / "bench" / "_bare_api.py"), str(port)], {}, log):
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"bare server did not come up; see {log}")
            time.sleep(0.1)
        yield base


def one_round(base: str, token: str | None, *, requests: int, concurrency: int) -> tuple[float, float]:
    """(requests per second, p99 latency in ms) for one round."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []

    def post(_: int) -> None:
        started = time.perf_counter()
        resp = client.post("/api/harness/run", json=BODY, headers=headers)
        latencies.append(time.perf_counter() - started)
        if resp.status_code != 202:
            raise SystemExit(f"{base}: POST /run answered {resp.status_code}: {resp.text[:300]}")

    with httpx.Client(base_url=base, timeout=60, limits=limits) as client:
        post(0)  # warm the connection
        latencies.clear()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(post, range(requests)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return requests / elapsed, latencies[int(len(latencies) * 0.99) - 1] * 1000


def bench_backend(name: str, url: str, tmp: Path, args: argparse.Namespace) -> None:
    env = procs.base_env(tmp / f".harness-{name}", url)
    env.update(
        {
            "HARNESS_RATE_LIMIT_PER_KEY": "1000000/minute",
            "HARNESS_RATE_LIMIT_PER_TENANT": "1000000/minute",
            "HARNESS_MAX_QUEUE_DEPTH": "1000000",
            "HARNESS_MAX_TENANT_IN_FLIGHT": "1000000",
        }
    )
    procs.harness(["db", "upgrade"], env)
    created = json.loads(procs.harness(["tenants", "create", "acme", "--key", "alice:submitter"], env).stdout)
    token = created["keys"][0]["token"]
    harness_rates: list[float] = []
    bare_rates: list[float] = []
    harness_p99: list[float] = []
    bare_p99: list[float] = []
    with ExitStack() as stack:
        harness_base = stack.enter_context(procs.api_server(env, tmp / f"api-{name}.log"))
        bare_base = stack.enter_context(bare_server(tmp / f"bare-{name}.log"))
        for _ in range(args.rounds):
            rate, p99 = one_round(bare_base, None, requests=args.requests, concurrency=args.concurrency)
            bare_rates.append(rate)
            bare_p99.append(p99)
            rate, p99 = one_round(harness_base, token, requests=args.requests, concurrency=args.concurrency)
            harness_rates.append(rate)
            harness_p99.append(p99)
    bare_best, harness_best = max(bare_rates), max(harness_rates)
    bare_tail, harness_tail = statistics.median(bare_p99), statistics.median(harness_p99)
    print(f"{name}: {args.rounds} interleaved rounds x {args.requests} POSTs, {args.concurrency} in flight")
    print(f"  bare FastAPI     {bare_best:8.0f} req/s   p99 {bare_tail:7.1f} ms")
    print(f"  POST /run        {harness_best:8.0f} req/s   p99 {harness_tail:7.1f} ms")
    target = 0.70 if name == "sqlite" else 0.60
    print(
        f"  throughput ratio {harness_best / bare_best:8.1%}  (target >= {target:.0%})   "
        f"p99 ratio {harness_tail / bare_tail:5.2f}x  (target <= 1.5x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.backend in ("sqlite", "both"):
            bench_backend("sqlite", db.sqlite_url(tmp), tmp, args)
        if args.backend in ("postgres", "both"):
            reason = db.postgres_available()
            if reason:
                print(f"postgres: skipped ({reason})")
                return
            with db.postgres_schema_url() as url:
                bench_backend("postgres", url, tmp, args)


if __name__ == "__main__":
    main()
