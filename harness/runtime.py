"""The one object a request or a job needs: settings, database, seams and clients, wired once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from harness.clock import Clock, RealSleeper, Sleeper, SystemClock
from harness.database.connect import create_db_engine, session_factory
from harness.events import EventSink, NullSink
from harness.ids import IdSource
from harness.policy import DEFAULT_RULES, PolicyEngine, rules_from_data
from harness.settings import Settings

if TYPE_CHECKING:
    from harness.integrity import Signer
    from harness.integrity.merkle import Frontier
    from harness.providers.base import ModelClient
    from harness.providers.resilience import CircuitBreaker


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock = field(default_factory=SystemClock)
    sleeper: Sleeper = field(default_factory=RealSleeper)
    ids: IdSource = field(default_factory=IdSource)
    sink: EventSink = field(default_factory=NullSink)
    providers: list[ModelClient] = field(default_factory=list)
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    audit_signer: Signer | None = None
    # The Merkle frontier of the last audit checkpoint this runtime signed (a cache that the
    # signer re-validates against the stored checkpoint before use).
    audit_frontier: Frontier | None = None
    # Admissions POST /run may still make before backpressure counts the queue again, by scope.
    admission_credits: dict[str, int] = field(default_factory=dict)
    policy: PolicyEngine = field(default_factory=lambda: PolicyEngine(DEFAULT_RULES))

    def close(self) -> None:
        self.engine.dispose()
        for provider in self.providers:  # release pooled provider connections
            close = getattr(provider, "close", None)
            if callable(close):
                close()


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    sleeper: Sleeper | None = None,
    sink: EventSink | None = None,
    providers: list[ModelClient] | None = None,
) -> Runtime:
    """Wire a runtime from settings; every seam can be swapped by keyword."""
    engine = create_db_engine(settings.resolved_database_url)
    signer = None
    if settings.audit_signing_key is not None:
        from harness.integrity import load_signer

        signer = load_signer(settings.audit_signing_key)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        clock=clock or SystemClock(),
        sleeper=sleeper or RealSleeper(),
        ids=IdSource(settings.seed),
        sink=sink or NullSink(),
        providers=providers if providers is not None else configured_providers(settings),
        audit_signer=signer,
        policy=PolicyEngine((*DEFAULT_RULES, *rules_from_data(settings.policy_rules))),
    )


def configured_providers(settings: Settings) -> list[ModelClient]:
    """One client per entry of ``settings.providers``, in that (default failover) order."""
    from harness.providers.anthropic_client import AnthropicMessagesClient
    from harness.providers.openai_client import OpenAIChatClient

    clients: list[ModelClient] = []
    for name in dict.fromkeys(settings.providers):  # each provider once, first mention wins
        if name == "anthropic":
            clients.append(
                AnthropicMessagesClient(
                    base_url=settings.anthropic_base_url,
                    api_key=settings.anthropic_api_key.get_secret_value(),
                    timeout=settings.provider_timeout_seconds,
                )
            )
        else:
            clients.append(
                OpenAIChatClient(
                    base_url=settings.provider_base_url,
                    api_key=settings.provider_api_key.get_secret_value(),
                    timeout=settings.provider_timeout_seconds,
                )
            )
    return clients
