"""Time the golden diff on a trace with a 10,000-entry audit log and one changed field.

Run: .venv/bin/python bench/bench_diff.py [--entries N] [--runs K]
Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

from deepdiff import DeepDiff

from harness.canonical import dumps_canonical
from replay.diff import diff_trace_bytes, diff_traces
from replay.report import render_text
from replay.results import ScenarioResult, ScenarioStatus


def build_trace(entries: int) -> dict[str, Any]:
    run = "run_0001"
    return {
        "format_version": 1,
        "scenario": {"name": "bench", "model": "sim-gpt-small", "seed": 7},
        "api": [
            {
                "step": 0,
                "request": {"method": "POST", "path": "/api/harness/run", "body": {"task": "t"}},
                "response": {"status": 202, "body": {"run_id": run}},
            }
        ],
        "prompts": [
            {
                "call": 0,
                "run": run,
                "messages": [{"role": "system", "content": "You are a helpful assistant."}],
            }
        ],
        "transitions": [{"run": run, "seq": 0, "from": "PENDING", "to": "RUNNING"}],
        "audit": [
            {
                "seq": i,
                "actor": "key_demo",
                "tenant": "acme",
                "action": "run.step",
                "target": run,
                "at": "2026-01-01T09:00:00+00:00",
                "payload": {"step": i, "tokens": 100 + i % 17, "note": f"step {i} done"},
                "prev_hash": f"{i:064x}",
                "entry_hash": f"{i + 1:064x}",
            }
            for i in range(entries)
        ],
        "artifacts": [],
        "final": {"runs": {run: "SUCCEEDED"}},
    }


def median_ms(action: Callable[[], object], runs: int) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    expected = build_trace(args.entries)
    actual = copy.deepcopy(expected)
    actual["audit"][args.entries // 2]["payload"]["tokens"] = -1
    expected_bytes = dumps_canonical(expected).encode()
    actual_bytes = dumps_canonical(actual).encode()

    def diff_and_report() -> str:
        diff = diff_traces(expected, actual)
        return render_text([ScenarioResult("bench", ScenarioStatus.REGRESSED, diff=diff)])

    def bytes_diff_and_report() -> str:
        diff = diff_trace_bytes(expected_bytes, actual_bytes)
        return render_text([ScenarioResult("bench", ScenarioStatus.REGRESSED, diff=diff)])

    report = diff_and_report()
    print(f"audit entries: {args.entries}, trace size: {len(actual_bytes) / 1e6:.1f} MB")
    print(f"report:\n{report}")
    ms = median_ms(diff_and_report, args.runs)
    print(f"diff_traces + render_text      median of {args.runs}: {ms:8.1f} ms")
    ms = median_ms(bytes_diff_and_report, args.runs)
    print(f"diff_trace_bytes + render_text median of {args.runs}: {ms:8.1f} ms (incl. parsing)")
    ms = median_ms(lambda: diff_trace_bytes(expected_bytes, expected_bytes), args.runs)
    print(f"diff_trace_bytes, equal bytes  median of {args.runs}: {ms:8.3f} ms")
    ms = median_ms(lambda: diff_traces(expected, copy.copy(expected)), args.runs)
    print(f"diff_traces, equal traces      median of {args.runs}: {ms:8.1f} ms")
    ms = median_ms(lambda: DeepDiff(expected, actual), 1)
    print(f"plain DeepDiff, whole document (1 run):      {ms:8.1f} ms")


if __name__ == "__main__":
    main()
