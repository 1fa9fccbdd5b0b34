"""Test plan: one worker runs >= 20,000 jobs (a fast scripted model) without growing.

The worker and its runtime live in this process so tracemalloc sees every allocation; RSS
comes from psutil. After a warm-up tenth, both are sampled every batch and a least-squares
slope (bytes per job) is fitted. The thresholds are a leak detector with a wide margin, not a
speed or footprint target: a leak of one small object graph per job (a cached session, a
growing event list, a per-run logger) exceeds them. SQLite and PostgreSQL.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.events import NullSink
from harness.jobs.worker import Worker
from harness.providers.openai_client import OpenAIChatClient
from replay.provider_sim import start_simulator
from tests.harness_stress import _workers as w

pytestmark = [pytest.mark.tier2, pytest.mark.timeout(7200)]

SCRIPT = Path(__file__).resolve().parent / "data" / "four_call_script.yaml"
TRACED_SLOPE_LIMIT = 2_048  # bytes per job that tracemalloc may see retained
RSS_SLOPE_LIMIT = 16_384  # bytes per job of resident growth (allocator noise included)


def _slope(points: list[tuple[int, int]]) -> float:
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return cov / var


def test_one_worker_runs_twenty_thousand_jobs_without_growing(make_runtime: Any, database_url: str) -> None:
    jobs = w.scaled(20_000, minimum=400)
    batches = 20
    batch = jobs // batches
    with start_simulator(SCRIPT) as sim:
        provider = OpenAIChatClient(base_url=sim.base_url, api_key="sk-sim-test", timeout=10)
        # NullSink: the test fixtures' default sink collects every event by design.
        rt = make_runtime(database_url, providers=[provider], sink=NullSink(), max_queue_depth=jobs + 1)
        who = w.principal(rt, "acme")
        worker = Worker(rt, worker_id="long-runner")
        process = psutil.Process()
        traced: list[tuple[int, int]] = []
        resident: list[tuple[int, int]] = []
        done = 0
        run_ids: list[str] = []
        tracemalloc.start()
        try:
            for n in range(batches):
                run_ids += w.create_runs(rt, who, batch, task="summarise the workspace")
                while worker.run_once():
                    done += 1
                # The in-process simulator logs every request it served: not the worker's memory.
                sim.reset()
                if n >= batches // 10:  # after warm-up
                    gc.collect()
                    traced.append((done, tracemalloc.get_traced_memory()[0]))
                    resident.append((done, process.memory_info().rss))
        finally:
            tracemalloc.stop()
    assert done == len(run_ids) == batch * batches
    traced_slope, rss_slope = _slope(traced), _slope(resident)
    print(
        f"\n{done} jobs: tracemalloc slope {traced_slope:.0f} B/job (limit {TRACED_SLOPE_LIMIT}), "
        f"RSS slope {rss_slope:.0f} B/job (limit {RSS_SLOPE_LIMIT})"
    )
    assert traced_slope < TRACED_SLOPE_LIMIT, f"traced memory grows {traced_slope:.0f} B per job"
    assert rss_slope < RSS_SLOPE_LIMIT, f"RSS grows {rss_slope:.0f} B per job"
    w.assert_exactly_once(rt, run_ids, steps_per_run=1)
