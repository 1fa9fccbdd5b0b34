"""Per-tenant provider routes: parsed strictly, resolved to clients in order, and honoured by the loop.

A route can only name models the tenant is allowed, each provider once; a route naming a
provider the service does not run fails the run with a clear reason instead of silently
using another. Retry-After parsing is covered here too (it decides the honoured wait).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from harness.accounts import create_tenant
from harness.database.connect import unit_of_work
from harness.database.models import Run
from harness.errors import ConfigError, ProviderError
from harness.events import PromptSent
from harness.jobs.worker import drain
from harness.orchestrator.routing import RouteTarget, provider_route
from harness.providers.base import ChatRequest, ChatResponse, retry_after_seconds
from harness.providers.routed import RoutedClient, route_clients

pytestmark = [pytest.mark.tier0]

BASE: dict[str, Any] = {
    "allowed_models": ["sim-small", "claude-3-5-haiku"],
    "default_model": "sim-small",
    "allowed_tools": ["list_files"],
}


class Recorder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[ChatRequest] = []

    def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        return ChatResponse(content=f"{self.name} answered", tool_calls=(), finish_reason="stop")


def test_a_route_is_parsed_in_order_with_model_and_stream() -> None:
    route = provider_route(
        {
            **BASE,
            "providers": [
                {"provider": "anthropic", "model": "claude-3-5-haiku", "stream": True},
                {"provider": "openai"},
            ],
        }
    )
    assert route == (
        RouteTarget("anthropic", "claude-3-5-haiku", True),
        RouteTarget("openai", None, False),
    )
    assert provider_route(BASE) == ()


@pytest.mark.parametrize(
    ("providers", "fragment"),
    [
        ([], "list of 1-4"),
        ({"provider": "openai"}, "list of 1-4"),
        (["openai"], "must be a mapping"),
        ([{"provider": "openai", "weight": 2}], "unknown keys"),
        ([{"provider": "OpenAI!"}], "provider name"),
        ([{"provider": "openai", "model": "gpt-4o"}], "allowed_models"),
        ([{"provider": "openai", "model": "gpt-5-turbo"}], "is not one of"),
        ([{"provider": "openai", "stream": "yes"}], "true or false"),
        ([{"provider": "openai"}, {"provider": "openai"}], "appears twice"),
    ],
)
def test_a_bad_route_fails_loudly_naming_the_entry(providers: Any, fragment: str) -> None:
    with pytest.raises(ConfigError, match=r"routing\.providers") as caught:
        provider_route({**BASE, "providers": providers})
    assert fragment in caught.value.message


def test_route_clients_pin_model_and_stream_and_keep_the_provider_name() -> None:
    openai_client, anthropic_client = Recorder("openai"), Recorder("anthropic")
    routing = {**BASE, "providers": [{"provider": "anthropic", "model": "claude-3-5-haiku", "stream": True}]}
    clients = route_clients([openai_client, anthropic_client], routing)
    assert [c.name for c in clients] == ["anthropic"]
    assert isinstance(clients[0], RoutedClient)
    clients[0].complete(ChatRequest(model="sim-small", messages=[], tools=[], temperature=0, seed=7))
    sent = anthropic_client.requests[0]
    assert (sent.model, sent.stream) == ("claude-3-5-haiku", True)
    assert route_clients([openai_client, anthropic_client], BASE) == [openai_client, anthropic_client]


def test_a_route_to_a_provider_the_service_does_not_run_is_a_provider_error() -> None:
    with pytest.raises(ProviderError, match=r"does not run .*HARNESS_PROVIDERS"):
        route_clients([Recorder("openai")], {**BASE, "providers": [{"provider": "anthropic"}]})
    with pytest.raises(ProviderError, match="route is invalid"):
        route_clients([Recorder("openai")], {**BASE, "providers": "anthropic"})


def test_the_loop_follows_the_tenants_route(
    make_runtime: Any, sqlite_database_url: str, run_factory: Callable[..., str]
) -> None:
    openai_client, anthropic_client = Recorder("openai"), Recorder("anthropic")
    rt = make_runtime(sqlite_database_url, providers=[openai_client, anthropic_client])
    create_tenant(
        rt,
        tenant_id="routed",
        name="Routed",
        routing={**BASE, "providers": [{"provider": "anthropic", "model": "claude-3-5-haiku"}]},
    )
    run_id = run_factory(rt, task="say hello", tenant="routed")
    drain(rt)
    with unit_of_work(rt.sessions) as session:
        run = session.execute(select(Run).where(Run.id == run_id)).scalar_one()
    assert run.status == "SUCCEEDED", run.error
    assert openai_client.requests == [] and [r.model for r in anthropic_client.requests] == [
        "claude-3-5-haiku"
    ]
    assert [e.provider for e in rt.sink.of_type(PromptSent)] == ["anthropic"]

    create_tenant(
        rt, tenant_id="misrouted", name="Misrouted", routing={**BASE, "providers": [{"provider": "vertex"}]}
    )
    bad_id = run_factory(rt, task="say hello", tenant="misrouted")
    drain(rt)
    with unit_of_work(rt.sessions) as session:
        bad = session.execute(select(Run).where(Run.id == bad_id)).scalar_one()
    assert bad.status == "FAILED" and bad.error is not None and "vertex" in bad.error


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the finer header wins
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),  # dates: our own backoff
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_parsing(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_harness_providers_setting_builds_the_clients_in_order(tmp_path: Any) -> None:
    from harness.providers.anthropic_client import AnthropicMessagesClient
    from harness.providers.openai_client import OpenAIChatClient
    from harness.runtime import configured_providers
    from harness.settings import Settings

    settings = Settings(data_dir=tmp_path, providers=["anthropic", "openai", "anthropic"])
    clients = configured_providers(settings)
    try:
        assert [type(c) for c in clients] == [AnthropicMessagesClient, OpenAIChatClient]
        assert [c.name for c in clients] == ["anthropic", "openai"]
    finally:
        for client in clients:
            client.close()
    with pytest.raises(ValueError, match="providers"):
        Settings(data_dir=tmp_path, providers=["vertex"])
