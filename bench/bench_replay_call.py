"""Per-provider-call replay cost: our indexed vcrpy cassette vs an in-memory MockTransport stub.

Prints ms/call at 10 and 200 interactions per cassette, and the ratio (target <= 1.5x).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx2

from harness.providers.base import ChatRequest
from harness.providers.openai_client import OpenAIChatClient
from replay.cassette import PROVIDER_ORIGIN, use_cassette

ANSWER = {
    "id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "sim-small",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def request(i: int) -> ChatRequest:
    messages = [{"role": "system", "content": "You are a harness. " * 40},
                {"role": "user", "content": f"task number {i}: " + "lorem ipsum " * 60}]
    return ChatRequest(model="sim-small", messages=messages, tools=[], temperature=0, seed=7)


def record(path: Path, n: int) -> None:
    def handler(req: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=ANSWER)

    with use_cassette(path, record=True):
        # vcrpy records through HTTPTransport; a MockTransport-backed server stands in for the provider.
        client = OpenAIChatClient(base_url=f"{PROVIDER_ORIGIN}/v1", api_key="sk-bench",
                                  transport=httpx2.MockTransport(handler))
        for i in range(n):
            client.complete(request(i))


def time_calls(client: OpenAIChatClient, n: int, repeats: int = 3) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(n):
            client.complete(request(i))
        samples.append((time.perf_counter() - start) / n * 1000)
    return statistics.median(samples)


def main() -> None:
    stub = OpenAIChatClient(base_url=f"{PROVIDER_ORIGIN}/v1", api_key="sk-bench",
                            transport=httpx2.MockTransport(lambda r: httpx2.Response(200, json=ANSWER)))
    for n in (10, 200):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.yaml"
            record(path, n)
            assert json.dumps(ANSWER)  # recorded
            stub_ms = time_calls(stub, n)
            samples = []
            for _ in range(3):
                with use_cassette(path, record=False):
                    client = OpenAIChatClient(base_url=f"{PROVIDER_ORIGIN}/v1", api_key="sk-bench",
                                              transport=httpx2.MockTransport(lambda r: httpx2.Response(500)))
                    samples.append(time_calls(client, n, repeats=1))
            replay_ms = statistics.median(samples)
            print(f"{n:>4} interactions: replay {replay_ms:.3f} ms/call, stub {stub_ms:.3f} ms/call, "
                  f"ratio {replay_ms / stub_ms:.2f}x")


if __name__ == "__main__":
    main()
