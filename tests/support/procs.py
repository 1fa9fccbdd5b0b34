"""Real processes on loopback for end-to-end tests: provider-sim, `harness serve`, `harness worker`.

Start-up waits are driven by readiness (the process's own "listening"/"ready" line, or a
health check), under a generous deadline that scales with ``HARNESS_TEST_TIMEOUT_SCALE`` (a
busy CI machine sets 2 or 3). A process that does not come up fails the test with "timed out
after N s waiting for ..." and the tail of its log; one that exits early says so at once.
"""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
STARTUP_SECONDS = 60.0


def startup_deadline(seconds: float = STARTUP_SECONDS) -> float:
    """Seconds to wait for a start-up, scaled by ``HARNESS_TEST_TIMEOUT_SCALE`` (default 1)."""
    try:
        scale = float(os.environ.get("HARNESS_TEST_TIMEOUT_SCALE", "1"))
    except ValueError:
        scale = 1.0
    return seconds * max(scale, 1.0)


def log_tail(log: Path, chars: int = 2000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def wait_until(ready: Callable[[], bool], *, what: str, proc: subprocess.Popen[str], log: Path) -> None:
    """Poll ``ready`` until true; fail naming ``what``, the time waited and the log tail."""
    limit = startup_deadline()
    started = time.monotonic()
    delay = 0.05
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(
                f"{what}: the process exited with {proc.returncode}; log {log}:\n{log_tail(log)}"
            )
        if time.monotonic() - started > limit:
            raise AssertionError(
                f"timed out after {limit:.0f} s waiting for {what}; log {log}:\n{log_tail(log)}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


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
        stdout = proc.stdout
        lines: list[str] = []

        def said_listening() -> bool:
            # Its first stdout line is the readiness signal; read it only once it is there.
            if not lines and select.select([stdout], [], [], 0)[0]:
                lines.append(stdout.readline())
            return bool(lines)

        wait_until(said_listening, what="provider-sim to say it is listening", proc=proc, log=log)
        match = re.search(r"listening on (http://\S+)", lines[0])
        assert match, f"provider-sim did not start: {lines[0]!r}; log {log}:\n{log_tail(log)}"
        yield match.group(1)


@contextmanager
def api_server(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    with process([str(BIN / "harness"), "serve", "--port", str(port)], env, log) as proc:
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, what=f"harness serve to answer {base}/healthz", proc=proc, log=log)
        yield base


@contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[None]:
    with process([str(BIN / "harness"), "worker", "--poll", "0.1"], env, log) as proc:
        wait_until(lambda: "worker ready" in log_tail(log, 10_000), what="harness worker to say it is ready",
                   proc=proc, log=log)  # fmt: skip
        yield


def base_env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env.update({"HARNESS_DATA_DIR": str(data_dir), "HARNESS_DATABASE_URL": database_url})
    return env
