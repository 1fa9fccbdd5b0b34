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
    policy: PolicyEngine = field(default_factory=lambda: PolicyEngine(DEFAULT_RULES))

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    sleeper: Sleeper | None = None,
    sink: EventSink | None = None,
    providers: list[ModelClient] | None = None,
) -> Runtime:
    """Wire a runtime from settings; every seam can be swapped by keyword."""
    from harness.providers.openai_client import OpenAIChatClient

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
        providers=providers
        if providers is not None
        else [
            OpenAIChatClient(
                base_url=settings.provider_base_url,
                api_key=settings.provider_api_key.get_secret_value(),
                timeout=settings.provider_timeout_seconds,
            )
        ],
        audit_signer=signer,
        policy=PolicyEngine((*DEFAULT_RULES, *rules_from_data(settings.policy_rules))),
    )
