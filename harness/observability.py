"""Structured JSON logs, every line scrubbed by the redactor, and the service's Prometheus metrics.

structlog events and stdlib ``logging`` records (third-party libraries) meet in one
``ProcessorFormatter`` whose chain ends ``... -> redact_event -> JSONRenderer``, so
nothing reaches the stream unscrubbed, including rendered tracebacks.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TextIO

import structlog
from opentelemetry import trace
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from structlog.typing import Processor

from harness.errors import ConfigError
from harness.redaction import redact, redact_event

__all__ = [
    "API_REFUSALS",
    "AUDIT_ENTRIES",
    "AUTH_FAILURES",
    "BREAKER_STATE",
    "BUDGET_REJECTIONS",
    "DEAD_LETTERS",
    "DEAD_LETTER_SIZE",
    "GUARD_DECISIONS",
    "JOBS_PROCESSED",
    "METRICS_CONTENT_TYPE",
    "PROVIDER_CALLS",
    "PROVIDER_LATENCY",
    "PROVIDER_RETRIES",
    "QUEUE_DEPTH",
    "RATE_LIMIT_REJECTIONS",
    "REGISTRY",
    "RUNS_CREATED",
    "RUN_TRANSITIONS",
    "configure_logging",
    "get_logger",
    "record_refusal",
    "render_metrics",
    "set_breaker_state",
    "set_queue_gauges",
    "span",
    "trace_requests",
]

_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _RedactingHandler(logging.StreamHandler[TextIO]):
    """The root handler configure_logging installs; its type lets a second call replace it."""


def _shared_processors() -> list[Processor]:
    # Run for structlog events and, as the foreign pre-chain, for stdlib records.
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.StackInfoRenderer(),
    ]


def _formatter() -> structlog.stdlib.ProcessorFormatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # tracebacks become strings before redaction
            redact_event,  # last before rendering: nothing reaches the stream unscrubbed
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
    )


def configure_logging(*, stream: TextIO | None = None, level: str = "INFO") -> None:
    """Send structlog and stdlib logs as redacted JSON lines to ``stream`` (default: stderr)."""
    level_name = level.upper()
    if level_name not in _LEVELS:
        raise ConfigError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}", level=level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # a cached logger would keep the old chain after a second configure_logging()
        cache_logger_on_first_use=False,
    )
    handler = _RedactingHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_formatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _RedactingHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level_name)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name``; configure_logging() decides where its lines go."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


REGISTRY: Final = CollectorRegistry(auto_describe=True)
"""Our own registry, so tests and multiple apps in one process never collide on the global one."""

RUNS_CREATED: Final = Counter("harness_runs_created", "Runs accepted.", ["tenant"], registry=REGISTRY)
RUN_TRANSITIONS: Final = Counter(
    "harness_run_transitions",
    "Run state-machine transitions.",
    ["from_status", "to_status"],
    registry=REGISTRY,
)
PROVIDER_CALLS: Final = Counter(
    "harness_provider_calls",
    "Model provider calls by outcome.",
    ["provider", "outcome"],
    registry=REGISTRY,
)
PROVIDER_RETRIES: Final = Counter(
    "harness_provider_retries", "Provider call retries.", ["provider"], registry=REGISTRY
)
JOBS_PROCESSED: Final = Counter(
    "harness_jobs_processed", "Queue jobs processed.", ["kind", "outcome"], registry=REGISTRY
)
AUDIT_ENTRIES: Final = Counter("harness_audit_entries", "Audit log entries appended.", registry=REGISTRY)
GUARD_DECISIONS: Final = Counter(
    "harness_guard_decisions",
    "Guardrail decisions.",
    ["source", "action"],
    registry=REGISTRY,
)

PROVIDER_LATENCY: Final = Histogram(
    "harness_provider_latency_seconds",
    "Provider call latency (each attempt), successful or not.",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
BREAKER_STATE: Final = Gauge(
    "harness_breaker_state",
    "Circuit breaker per provider: 0 closed, 1 half-open, 2 open.",
    ["provider"],
    registry=REGISTRY,
)
_BREAKER_VALUES: Final = {"closed": 0, "half_open": 1, "open": 2}
QUEUE_DEPTH: Final = Gauge(
    "harness_queue_depth", "Jobs queued or leased (not done, not dead).", registry=REGISTRY
)
DEAD_LETTER_SIZE: Final = Gauge(
    "harness_dead_letter_size", "Jobs in the dead-letter state.", registry=REGISTRY
)
DEAD_LETTERS: Final = Counter("harness_dead_letters", "Jobs dead-lettered.", ["kind"], registry=REGISTRY)
BUDGET_REJECTIONS: Final = Counter(
    "harness_budget_rejections", "Model calls refused by the token budget.", registry=REGISTRY
)
RATE_LIMIT_REJECTIONS: Final = Counter(
    "harness_rate_limit_rejections", "Requests refused by a rate limit (429).", registry=REGISTRY
)
AUTH_FAILURES: Final = Counter(
    "harness_auth_failures",
    "Requests refused as unauthenticated (401), by reason code.",
    ["reason"],
    registry=REGISTRY,
)
API_REFUSALS: Final = Counter(
    "harness_api_refusals", "API error responses by problem code.", ["code"], registry=REGISTRY
)

METRICS_CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""The Content-Type to serve render_metrics() with."""


def render_metrics() -> bytes:
    """The registry in Prometheus text exposition format."""
    rendered: bytes = generate_latest(REGISTRY)
    return rendered


def set_breaker_state(provider: str, state: str) -> None:
    """Publish a breaker's state (``closed``, ``half_open`` or ``open``)."""
    BREAKER_STATE.labels(provider=provider).set(_BREAKER_VALUES[state])


def set_queue_gauges(*, depth: int, dead: int) -> None:
    """Publish the queue's depth and dead-letter size (the worker counts them)."""
    QUEUE_DEPTH.set(depth)
    DEAD_LETTER_SIZE.set(dead)


_refusal_log = structlog.stdlib.get_logger("harness.api.refusals")


def record_refusal(*, status: int, code: str, reason: str | None, path: str) -> None:
    """Count an API refusal and log it with a reason code: never a header, a body or a key."""
    API_REFUSALS.labels(code=code).inc()
    if status == 401:
        AUTH_FAILURES.labels(reason=reason or code).inc()
    elif status == 429:
        RATE_LIMIT_REJECTIONS.inc()
    _refusal_log.warning("request refused", status=status, reason_code=reason or code, code=code, path=path)


_tracer = trace.get_tracer("harness")
# Attribute names that could carry a credential never become span attributes, whatever the value.
_SECRET_ATTRIBUTE = re.compile(r"key|token|secret|password|authorization|signature|cookie", re.IGNORECASE)


def _attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in attributes.items():
        if value is None or _SECRET_ATTRIBUTE.search(name):
            continue
        clean[name] = redact(value) if isinstance(value, str) else value
    return clean


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """An OpenTelemetry span (a no-op until an SDK tracer provider is installed).

    Attributes are ids and names (``tenant.id``, ``run.id``, ``provider.name``, ...): string
    values pass through the redactor and credential-named attributes are dropped. Exceptions
    are recorded and set the span's status to ERROR.
    """
    with _tracer.start_as_current_span(name, attributes=_attributes(attributes)) as current:
        yield current


async def trace_requests(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
    """HTTP middleware: one ``api.request`` span per request (method, path, status; no headers)."""
    with span("api.request", **{"http.method": request.method, "http.path": request.url.path}) as current:
        response = await call_next(request)
        current.set_attribute("http.status_code", response.status_code)
        return response
