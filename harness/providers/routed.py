"""A tenant's provider route made concrete: configured clients in route order, model and streaming set.

The orchestrator hands the result to :func:`harness.providers.resilience.call_with_resilience`
and applies every guardrail around that one call, so a fallback provider's prompt and answer
pass exactly the same guard, redaction, policy and budget checks as the primary's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from harness.errors import ConfigError, ProviderError
from harness.orchestrator.routing import RouteTarget, provider_route
from harness.providers.base import ChatRequest, ChatResponse, ModelClient


class RoutedClient:
    """One route target: the inner client, with the target's model and streaming mode applied."""

    def __init__(self, inner: ModelClient, target: RouteTarget) -> None:
        self.name = inner.name  # the breaker and the audit see the provider itself
        self.inner = inner
        self.target = target

    def complete(self, request: ChatRequest) -> ChatResponse:
        return self.inner.complete(
            replace(request, model=self.target.model or request.model, stream=self.target.stream)
        )


def route_clients(providers: Sequence[ModelClient], routing: Mapping[str, Any]) -> list[ModelClient]:
    """The clients to try, in order, for a tenant whose routing config is ``routing``.

    No ``providers`` in the config: every configured client in its default order. A route
    naming a provider this service does not run is a ``ProviderError`` (the run fails, named).
    """
    if not providers:
        raise ProviderError("no model provider is configured")
    try:
        route = provider_route(routing)
    except ConfigError as exc:
        raise ProviderError(f"the tenant's provider route is invalid: {exc.message}") from exc
    if not route:
        return list(providers)
    by_name = {p.name: p for p in providers}
    missing = [t.provider for t in route if t.provider not in by_name]
    if missing:
        raise ProviderError(
            f"the tenant's route names provider(s) {missing} that this service does not run "
            f"(configured: {sorted(by_name)}); set HARNESS_PROVIDERS or fix the tenant's routing"
        )
    return [RoutedClient(by_name[t.provider], t) for t in route]
