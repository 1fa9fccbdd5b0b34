"""Model output contains key-like tokens and connection strings: none may reach the log stream.

Drives the real chain from configure_logging() (structlog and stdlib ``logging``) into a
captured stream and checks the rendered bytes, tracebacks included.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from harness.errors import ConfigError, ProviderError
from harness.observability import configure_logging, get_logger
from harness.redaction import redact_event

pytestmark = [pytest.mark.tier0, pytest.mark.security]

CORPUS: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "data" / "secret_corpus.yaml").read_text(encoding="utf-8")
)
POSITIVES = [
    (type_, p["text"], p.get("secret", p["text"]))
    for type_, spec in CORPUS["types"].items()
    for p in spec["positives"]
]
MODEL_OUTPUT = "Here is what I found in the repo:\n" + "\n".join(text for _, text, _ in POSITIVES)
CONNECTION = "postgresql+psycopg://harness:FAKEconnPw9@db.internal:5432/harness"


@pytest.fixture
def configure() -> Iterator[Callable[[str], io.StringIO]]:
    """configure_logging() into fresh streams; root logger and structlog restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level

    def _configure(level: str) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(stream=stream, level=level)
        return stream

    yield _configure
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved_level)
    structlog.reset_defaults()


@pytest.fixture
def log_stream(configure: Callable[[str], io.StringIO]) -> io.StringIO:
    return configure("DEBUG")


def assert_no_secret(output: str) -> None:
    for type_, _, secret in POSITIVES:
        # the JSON renderer escapes quotes and backslashes: check the escaped form too
        assert secret not in output, f"{type_} secret leaked"
        assert json.dumps(secret)[1:-1] not in output, f"{type_} secret leaked (JSON-escaped)"
    assert "FAKEconnPw9" not in output


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_event_with_model_output_is_redacted(log_stream: io.StringIO) -> None:
    log = get_logger("harness.orchestrator")
    log.info("model_output", output=MODEL_OUTPUT, connection=CONNECTION)
    output = log_stream.getvalue()
    assert_no_secret(output)
    (line,) = lines(log_stream)
    assert line["event"] == "model_output"
    assert line["logger"] == "harness.orchestrator"
    assert line["level"] == "info"
    assert line["connection"] == (
        "postgresql+psycopg://harness:[REDACTED:database_url]@db.internal:5432/harness"
    )
    for type_, _, _ in POSITIVES:
        assert f"[REDACTED:{type_}]" in line["output"]
    assert line["output"].startswith("Here is what I found in the repo:\n")


def test_secret_named_fields_are_replaced_whole(log_stream: io.StringIO) -> None:
    get_logger("harness.api").info("login", password="plain words", api_key="whatever", max_tokens=100)
    (line,) = lines(log_stream)
    assert line["password"] == "[REDACTED:secret_field]"
    assert line["api_key"] == "[REDACTED:secret_field]"
    assert line["max_tokens"] == 100


def test_stdlib_logging_from_a_third_party_library_is_redacted(log_stream: io.StringIO) -> None:
    sdk = logging.getLogger("thirdparty.sdk")
    sdk.warning("retrying %s against %s", MODEL_OUTPUT, CONNECTION)
    sdk.debug("headers: %s", {"Authorization": "Bearer FAKEtok3n0123456789abcdef"})
    output = log_stream.getvalue()
    assert_no_secret(output)
    first, second = lines(log_stream)
    assert first["logger"] == "thirdparty.sdk"
    assert first["level"] == "warning"
    assert "[REDACTED:database_url]" in first["event"]
    assert "[REDACTED:" in second["event"]


def _fail_with_secrets() -> None:
    raise ProviderError(f"upstream refused {CONNECTION} with key {POSITIVES[0][2]}")


def test_structlog_exception_traceback_is_redacted(log_stream: io.StringIO) -> None:
    log = get_logger("harness.worker")
    try:
        _fail_with_secrets()
    except ProviderError:
        log.exception("provider_failed", model_output=MODEL_OUTPUT)
    output = log_stream.getvalue()
    assert_no_secret(output)
    (line,) = lines(log_stream)
    assert "Traceback (most recent call last)" in line["exception"]
    assert "ProviderError: upstream refused" in line["exception"]
    assert "[REDACTED:database_url]" in line["exception"]
    assert f"[REDACTED:{POSITIVES[0][0]}]" in line["exception"]


def test_stdlib_exception_traceback_is_redacted(log_stream: io.StringIO) -> None:
    try:
        _fail_with_secrets()
    except ProviderError:
        logging.getLogger("httpx.pool").exception("connection dropped")
    output = log_stream.getvalue()
    assert_no_secret(output)
    (line,) = lines(log_stream)
    assert "Traceback (most recent call last)" in line["exception"]
    assert "[REDACTED:database_url]" in line["exception"]


def test_objects_are_rendered_through_the_redactor(log_stream: io.StringIO) -> None:
    class Settings:
        def __repr__(self) -> str:
            return f"Settings(database_url={CONNECTION!r})"

    get_logger("harness.app").info("started", settings=Settings(), raw=b"token=FAKEbytes99")
    output = log_stream.getvalue()
    assert_no_secret(output)
    assert "FAKEbytes99" not in output
    (line,) = lines(log_stream)
    assert "[REDACTED:database_url]" in line["settings"]


def test_configure_logging_twice_keeps_one_redacting_handler(
    configure: Callable[[str], io.StringIO],
) -> None:
    first = configure("INFO")
    second = configure("INFO")
    get_logger("harness").info("once", token="FAKEonce1")
    logging.getLogger("lib").info("stdlib once")
    assert first.getvalue() == ""
    assert [line["event"] for line in lines(second)] == ["once", "stdlib once"]
    assert "FAKEonce1" not in second.getvalue()


def test_level_filters_both_paths(configure: Callable[[str], io.StringIO]) -> None:
    stream = configure("warning")
    get_logger("harness").info("quiet")
    logging.getLogger("lib").info("quiet too")
    get_logger("harness").warning("loud", secret="FAKEloud1")
    assert [line["event"] for line in lines(stream)] == ["loud"]
    assert "FAKEloud1" not in stream.getvalue()


def test_unknown_level_fails_loudly() -> None:
    with pytest.raises(ConfigError, match="unknown log level 'LOUD'"):
        configure_logging(level="LOUD")


def test_redactor_is_the_last_processor_before_rendering(log_stream: io.StringIO) -> None:
    (formatter,) = [
        h.formatter
        for h in logging.getLogger().handlers
        if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)
    ]
    assert formatter.processors[-2] is redact_event
    assert isinstance(formatter.processors[-1], structlog.processors.JSONRenderer)
