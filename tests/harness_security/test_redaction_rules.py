"""The redactor's rules against the synthetic corpus, plus property tests on arbitrary text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.redaction import (
    SECRET_FIELD,
    SECRET_TYPES,
    SecretFinding,
    find_secrets,
    is_secret_key,
    redact,
    redact_data,
    redact_event,
    scan_text,
)

pytestmark = [pytest.mark.tier0, pytest.mark.security]

CORPUS: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "data" / "secret_corpus.yaml").read_text(encoding="utf-8")
)
POSITIVES = [
    pytest.param(type_, p["text"], p.get("secret", p["text"]), id=f"{type_}-{i}")
    for type_, spec in CORPUS["types"].items()
    for i, p in enumerate(spec["positives"])
]
TYPE_NEGATIVES = [
    pytest.param(text, id=f"{type_}-{i}")
    for type_, spec in CORPUS["types"].items()
    for i, text in enumerate(spec.get("negatives", []))
]
GLOBAL_NEGATIVES = [pytest.param(text, id=f"global-{i}") for i, text in enumerate(CORPUS["negatives"])]
ALL_TEXTS = [p.values[1] for p in POSITIVES] + [n.values[0] for n in TYPE_NEGATIVES + GLOBAL_NEGATIVES]
SECRETS = [p.values[2] for p in POSITIVES]


def test_corpus_covers_every_rule_type() -> None:
    assert CORPUS["format_version"] == 1
    assert set(CORPUS["types"]) == SECRET_TYPES - {SECRET_FIELD}
    assert len(CORPUS["types"]) >= 20


@pytest.mark.parametrize(("type_", "text", "secret"), POSITIVES)
def test_positive_is_redacted_with_its_type(type_: str, text: str, secret: str) -> None:
    assert secret in text, "corpus error: the secret must be part of its text"
    redacted = redact(text)
    assert secret not in redacted
    assert f"[REDACTED:{type_}]" in redacted
    assert type_ in scan_text(text)


@pytest.mark.parametrize(("type_", "text", "secret"), POSITIVES)
def test_finding_covers_the_secret_bytes(type_: str, text: str, secret: str) -> None:
    at = text.index(secret)
    covering = [f for f in find_secrets(text) if f.start <= at and at + len(secret) <= f.end]
    assert [f.type for f in covering] == [type_]


@pytest.mark.parametrize("text", TYPE_NEGATIVES + GLOBAL_NEGATIVES)
def test_near_miss_is_untouched(text: str) -> None:
    assert redact(text) == text
    assert find_secrets(text) == []


@pytest.mark.parametrize("text", ALL_TEXTS)
def test_redaction_is_idempotent_and_leaves_nothing_to_find(text: str) -> None:
    once = redact(text)
    assert redact(once) == once
    assert find_secrets(once) == []


def test_surrounding_text_and_non_secret_url_parts_survive() -> None:
    text = "connect postgres://app:FAKEpw1@db.internal:5432/harness now"
    assert redact(text) == "connect postgres://app:[REDACTED:database_url]@db.internal:5432/harness now"
    assert redact("Authorization: Bearer FAKEtok3n0123456789") == (
        "Authorization: Bearer [REDACTED:bearer_token]"
    )


def test_specific_type_wins_over_generic_assignment() -> None:
    text = 'api_key="sk-proj-FAKEpR6Hj0tr97wOsqycamK540AtN2LtUcGE"'
    assert redact(text) == 'api_key="[REDACTED:openai_api_key]"'
    assert scan_text(text) == ["openai_api_key"]


def test_a_secret_longer_than_its_token_shape_is_redacted_whole() -> None:
    # the OpenAI rule stops at '.', the assignment takes the rest; both merge into one marker
    text = "token=sk-proj-FAKEpR6Hj0tr97wOsqycamK540AtN2LtUcGE.tail"
    assert redact(text) == "token=[REDACTED:openai_api_key]"


def test_findings_are_sorted_frozen_and_typed() -> None:
    text = "a AKIAIOSFODNN7EXAMPLE b ghp_FAKEN2LtUcGEeTxA8i5TsieQvEbDFn1l34yNfK c"
    findings = find_secrets(text)
    assert [f.type for f in findings] == ["aws_access_key_id", "github_pat"]
    assert findings[0] == SecretFinding("aws_access_key_id", 2, 22)
    with pytest.raises(AttributeError):
        findings[0].start = 0  # type: ignore[misc]


def test_redaction_settles_when_a_replacement_exposes_another_secret() -> None:
    # found by fuzzing: the first pass's marker holds the keyword "private_key", which puts
    # the glued-on token in reach of the high-entropy rule; a single pass is not idempotent
    text = "-----BEGIN RSA PRIVATE KEY-----aB3dE5gH7jK9mN1pQ3sT5vX7"
    assert redact(text) == "[REDACTED:private_key][REDACTED:high_entropy_secret]"
    assert redact(redact(text)) == redact(text)


def test_existing_markers_are_not_reported_as_secrets() -> None:
    assert find_secrets("password=[REDACTED:secret_assignment]") == []
    assert redact("[REDACTED:jwt]") == "[REDACTED:jwt]"


# --- structured data -------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_password",
        "passwd",
        "secret",
        "client_secret",
        "clientSecret",
        "token",
        "access_token",
        "api_key",
        "api-key",
        "apiKey",
        "apikey",
        "Authorization",
        "private_key",
        "access_key",
        "aws_secret_access_key",
        "Cookie",
        "Set-Cookie",
        "x-api-key",
        "X-API-KEY",
    ],
)
def test_secret_keys_are_recognised(key: str) -> None:
    assert is_secret_key(key)
    assert redact_data({key: "anything at all"}) == {key: f"[REDACTED:{SECRET_FIELD}]"}


@pytest.mark.parametrize(
    "key",
    [
        "max_tokens",
        "prompt_tokens",
        "token_count",
        "tokenizer",
        "digest",
        "key",
        "status",
        "passes",
    ],
)
def test_ordinary_keys_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)
    assert redact_data({key: "plain value"}) == {key: "plain value"}


@pytest.mark.parametrize("empty", [None, True, False, "", [], {}])
def test_empty_values_under_secret_keys_are_kept(empty: Any) -> None:
    assert redact_data({"password": empty}) == {"password": empty}


def test_redact_data_walks_nested_structures_and_copies() -> None:
    secret_url = "postgres://app:FAKEpw1@db/harness"
    original = {
        "run_id": "run_3f2a9c0d4b5e6f708192a3b4c5d6e7f8",
        "digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "usage": {"prompt_tokens": 12, "max_tokens": 100, "ratio": 0.5, "cached": False},
        "headers": {"Authorization": {"scheme": "Bearer", "value": "abc"}, "Accept": "json"},
        "steps": [{"output": f"db is {secret_url}"}, ("AKIAIOSFODNN7EXAMPLE", 3)],
        "config": {"token": 12345},
    }
    snapshot = json.dumps(original, sort_keys=True, default=list)
    redacted = redact_data(original)
    assert redacted == {
        "run_id": original["run_id"],
        "digest": original["digest"],
        "usage": original["usage"],
        "headers": {"Authorization": "[REDACTED:secret_field]", "Accept": "json"},
        "steps": [
            {"output": "db is postgres://app:[REDACTED:database_url]@db/harness"},
            ("[REDACTED:aws_access_key_id]", 3),
        ],
        "config": {"token": "[REDACTED:secret_field]"},
    }
    assert isinstance(redacted["steps"][1], tuple)
    assert json.dumps(original, sort_keys=True, default=list) == snapshot, "input was mutated"


def test_redact_data_passes_scalars_through() -> None:
    assert redact_data(None) is None
    assert redact_data(7) == 7
    assert redact_data("ghp_FAKEN2LtUcGEeTxA8i5TsieQvEbDFn1l34yNfK") == "[REDACTED:github_pat]"


def test_redact_event_scrubs_fields_messages_and_reprs() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque(dsn='mysql://root:FAKEmysqlPw@db/shop')"

    event = {
        "event": "calling with sk-ant-api03-FAKEbDFn1l34yNfKhOZpR6Hj0tr97wOsq",
        "password": "FAKEhunter2",
        "obj": Opaque(),
        "level": "info",
    }
    out = redact_event(None, "info", event)
    assert out == {
        "event": "calling with [REDACTED:anthropic_api_key]",
        "password": "[REDACTED:secret_field]",
        "obj": "Opaque(dsn='mysql://root:[REDACTED:database_url]@db/shop')",
        "level": "info",
    }


# --- properties -------------------------------------------------------------------------

# Lower-case prose with punctuation can never form a secret: no digits, no ':', '=', '_' or '-'.
PROSE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,!?'", max_size=200)


@settings(deadline=None, max_examples=300)
@given(st.text(max_size=400))
def test_redact_never_raises_and_is_idempotent_on_arbitrary_text(text: str) -> None:
    once = redact(text)
    assert redact(once) == once
    assert find_secrets(once) == []


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=PROSE,
    suffix=PROSE,
    positive=st.sampled_from([(p.values[1], p.values[2]) for p in POSITIVES]),
)
def test_embedded_secret_is_removed_and_surroundings_kept(
    prefix: str, suffix: str, positive: tuple[str, str]
) -> None:
    text, secret = positive
    redacted = redact(f"{prefix}\n{text}\n{suffix}")
    assert secret not in redacted
    assert redacted.startswith(prefix + "\n")
    assert redacted.endswith("\n" + suffix)


@settings(deadline=None)
@given(PROSE)
def test_prose_is_never_changed(text: str) -> None:
    assert redact(text) == text


@settings(deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=40)
        | st.sampled_from([p.values[1] for p in POSITIVES]),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.sampled_from(["password", "note", "Token", "max_tokens"]), children)
        ),
        max_leaves=20,
    )
)
def test_redact_data_leaves_no_corpus_secret_and_is_idempotent(value: Any) -> None:
    redacted = redact_data(value)
    assert redact_data(redacted) == redacted
    rendered = json.dumps(redacted)
    for secret in SECRETS:
        assert json.dumps(secret)[1:-1] not in rendered
