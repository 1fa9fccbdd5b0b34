"""Real processes on loopback for end-to-end tests: provider-sim, `harness serve`, `harness worker`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def harness(
    args: Sequence[str], env: dict[str, str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "harness"), *args], env=env, capture_output=True, text=True, check=check, timeout=60
    )


@contextmanager
def process(args: Sequence[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    with log.open("w") as out:
        proc = subprocess.Popen(list(args), env=env, stdout=subprocess.PIPE, stderr=out, text=True)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@contextmanager
def provider_sim(script: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """Start the simulator on a free port; yield its base URL once it says it is listening."""
    args = [sys.executable, "-m", "replay.provider_sim", "--script", str(script), "--port", "0"]
    with process(args, env, log) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        assert match, f"provider-sim did not start: {line!r}; see {log}"
        yield match.group(1)


@contextmanager
def api_server(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    with process([str(BIN / "harness"), "serve", "--port", str(port)], env, log):
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"harness serve did not come up; see {log}: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield base


@contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[None]:
    with process([str(BIN / "harness"), "worker", "--poll", "0.1"], env, log):
        yield


def base_env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env.update({"HARNESS_DATA_DIR": str(data_dir), "HARNESS_DATABASE_URL": database_url})
    return env
