"""Worker throughput and CPU per run: 1 vs 4 ``harness worker`` processes on PostgreSQL, 50 ms model latency.

Run: ``.venv/bin/python bench/bench_workers.py [--runs N] [--rounds R] [--latency-ms MS] [--profile]``.

Every run is a four-call run (three read-only tool turns and an answer); the simulator answers
each call after ``--latency-ms``. Rounds alternate 1 and 4 workers on fresh runs, so machine
noise hits both alike; printed: best runs/s of each and the ratio (target >= 3x: on 2 cores
that needs the workers to be latency-bound, not CPU-bound). ``--profile`` also runs 20 runs
in-process under cProfile and prints the worker CPU per run (target <= 50 ms) and where it goes.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.database.migrate import upgrade  # noqa: E402
from harness.events import NullSink  # noqa: E402
from harness.jobs.worker import Worker  # noqa: E402
from harness.providers.openai_client import OpenAIChatClient  # noqa: E402
from harness.runtime import build_runtime  # noqa: E402
from harness.settings import Settings  # noqa: E402
from replay.provider_sim import start_simulator  # noqa: E402
from tests.harness_stress import _workers as w  # noqa: E402
from tests.support import db, procs  # noqa: E402

SCRIPT = """\
format_version: 1
created: 1767225600
default:
  turns:
    - {{delay_ms: {ms}, tool_calls: [{{name: list_files, arguments: {{}}}}]}}
    - {{delay_ms: {ms}, tool_calls: [{{name: read_file, arguments: {{path: sales.csv}}}}]}}
    - {{delay_ms: {ms}, tool_calls: [{{name: read_file, arguments: {{path: sales.csv}}}}]}}
    - {{delay_ms: {ms}, content: "Done in four calls."}}
"""


def one_round(rt: Any, who: Any, env: dict[str, str], tmp: Path, *, workers: int, runs: int) -> float:
    w.create_runs(rt, who, runs, task="four calls please")
    with ExitStack() as stack:
        started = time.perf_counter()
        for n in range(workers):
            stack.enter_context(procs.worker(env, tmp / f"worker-{workers}-{n}.log"))
        w.wait_for("the round to drain", lambda: w.all_terminal(rt), deadline_seconds=600, poll=0.05)
        return runs / (time.perf_counter() - started)


def profile(rt: Any, who: Any) -> None:
    worker = Worker(rt, worker_id="profiled")
    w.create_runs(rt, who, 25, task="four calls please")
    for _ in range(5):
        worker.run_once()  # warm up: imports, compiled statements, connections
    profiler = cProfile.Profile()
    started = time.process_time()
    profiler.enable()
    ran = 0
    while worker.run_once():
        ran += 1
    profiler.disable()
    cpu = time.process_time() - started
    per_run = cpu / ran * 1000
    print(f"worker CPU per 4-call run  {per_run:8.1f} ms  (target <= 50 ms; {ran} runs, cProfile on)")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    reason = db.postgres_available()
    if reason:
        raise SystemExit(f"needs PostgreSQL: {reason}")
    with tempfile.TemporaryDirectory() as tmp_name, db.postgres_schema_url() as url:
        tmp = Path(tmp_name)
        script = tmp / "script.yaml"
        script.write_text(SCRIPT.format(ms=args.latency_ms))
        upgrade(url)
        with start_simulator(script) as sim:
            settings = Settings(data_dir=tmp / ".harness", database_url=url, max_queue_depth=10**6)
            provider = OpenAIChatClient(base_url=sim.base_url, api_key="sk-sim-bench", timeout=30)
            rt = build_runtime(settings, providers=[provider], sink=NullSink())
            who = w.principal(rt, "acme", files={"sales.csv": "region,amount\nNorth,120\nSouth,80\n"})
            if args.profile:
                profile(rt, who)
            env = procs.base_env(tmp / ".harness", url)
            env["HARNESS_PROVIDER_BASE_URL"] = sim.base_url
            rates: dict[int, list[float]] = {1: [], 4: []}
            for _ in range(args.rounds):
                for workers in (1, 4):
                    rates[workers].append(one_round(rt, who, env, tmp, workers=workers, runs=args.runs))
            rt.close()
    one, four = max(rates[1]), max(rates[4])
    print(f"PostgreSQL, {args.latency_ms} ms model latency, 4-call runs, {args.rounds} interleaved rounds")
    print(f"  1 worker      {one:7.2f} runs/s")
    print(f"  4 workers     {four:7.2f} runs/s")
    print(f"  scale-out     {four / one:7.2f}x  (target >= 3x)")


if __name__ == "__main__":
    main()
