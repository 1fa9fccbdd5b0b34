"""Request attempts to force a disallowed model or tool via crafted parameters.

The router must never select a model or tool outside the tenant's allowlist, whatever the
spelling, type or nesting of the request.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from harness.api.schemas import RunRequest
from harness.errors import ConfigError, ForbiddenModel, ForbiddenTool, InvalidRequest
from harness.orchestrator.routing import (
    CANONICAL_MODELS,
    MODEL_ALIASES,
    TenantRouting,
    resolve_model,
    resolve_tools,
)

pytestmark = [pytest.mark.tier0, pytest.mark.security]

# The allowed/denied policy matrix: each tenant with what it may and may not reach.
POLICY_MATRIX: dict[str, tuple[TenantRouting, frozenset[str]]] = {
    "sim_only": (
        TenantRouting(
            allowed_models=frozenset({"sim-small", "sim-large"}),
            default_model="sim-small",
            allowed_tools=frozenset({"list_files", "read_file"}),
        ),
        frozenset({"gpt-4o", "gpt-4o-mini", "claude-3-5-haiku"}),
    ),
    "cheap_openai": (
        TenantRouting(
            allowed_models=frozenset({"gpt-4o-mini"}),
            default_model="gpt-4o-mini",
            allowed_tools=frozenset({"read_file", "write_artifact"}),
        ),
        frozenset({"gpt-4o", "sim-small", "sim-large", "claude-3-5-haiku"}),
    ),
    "anthropic_only": (
        TenantRouting(
            allowed_models=frozenset({"claude-3-5-haiku"}),
            default_model="claude-3-5-haiku",
            allowed_tools=frozenset(),
        ),
        frozenset({"gpt-4o", "gpt-4o-mini", "sim-small", "sim-large"}),
    ),
}


@pytest.fixture(params=sorted(POLICY_MATRIX))
def matrix_row(request: pytest.FixtureRequest) -> tuple[TenantRouting, frozenset[str]]:
    return POLICY_MATRIX[request.param]


CYRILLIC = str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e", "i": "\u0456",
                          "c": "\u0441", "p": "\u0440"})


def crafted_spellings(model: str) -> list[object]:
    """Ways a client might try to reach ``model`` without spelling it exactly."""
    return [
        model.upper(),
        model.title(),
        f" {model} ",
        f"{model}\n",
        f"\t{model}",
        f"{model}\x00",
        model.translate(CYRILLIC),  # lookalike letters
        model.replace("-", "\u2010"),  # Unicode hyphen
        "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in model),  # fullwidth
        model[:2] + "\u200d" + model[2:],  # zero-width joiner
        f"openai/{model}",
        f"{model}/../{model}",
        f"sim-small,{model}",
        f"{model},sim-small",
        f"{model}-forbidden",
        f"{model}:latest",
        [model],
        {"model": model},
        (model,),
        model.encode(),
        42,
        True,
        3.5,
        object(),
    ]


def test_allowed_models_resolve_to_themselves(matrix_row: tuple[TenantRouting, frozenset[str]]) -> None:
    policy, _ = matrix_row
    for model in policy.allowed_models:
        assert resolve_model(model, policy=policy) == model


@pytest.mark.parametrize("requested", [None, "", "default"])
def test_absent_model_means_the_tenant_default(
    requested: object, matrix_row: tuple[TenantRouting, frozenset[str]]
) -> None:
    policy, _ = matrix_row
    assert resolve_model(requested, policy=policy) == policy.default_model


def test_denied_models_and_their_aliases_are_refused(
    matrix_row: tuple[TenantRouting, frozenset[str]],
) -> None:
    policy, denied = matrix_row
    denied_aliases = [a for a, target in MODEL_ALIASES.items() if target in denied]
    for requested in [*sorted(denied), *denied_aliases]:
        with pytest.raises(ForbiddenModel, match="not allowed for this tenant"):
            resolve_model(requested, policy=policy)


def test_crafted_spellings_never_select_any_model(
    matrix_row: tuple[TenantRouting, frozenset[str]],
) -> None:
    policy, denied = matrix_row
    for model in sorted(policy.allowed_models | denied):
        for crafted in crafted_spellings(model):
            assert crafted != model, "a crafted spelling must differ from the real one"
            with pytest.raises(ForbiddenModel):
                resolve_model(crafted, policy=policy)


def test_aliases_resolve_only_to_allowed_canonical_ids() -> None:
    policy = TenantRouting(
        allowed_models=frozenset({"gpt-4o"}), default_model="gpt-4o", allowed_tools=frozenset()
    )
    assert resolve_model("gpt-4o-2024-08-06", policy=policy) == "gpt-4o"
    with pytest.raises(ForbiddenModel):
        resolve_model("gpt-4o-mini-2024-07-18", policy=policy)
    assert set(MODEL_ALIASES.values()) <= CANONICAL_MODELS
    assert not set(MODEL_ALIASES) & CANONICAL_MODELS


def test_a_str_subclass_that_lies_about_equality_is_refused() -> None:
    class Chameleon(str):
        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return hash("sim-small")

    policy, _ = POLICY_MATRIX["sim_only"]
    with pytest.raises(ForbiddenModel, match="plain string"):
        resolve_model(Chameleon("gpt-4o"), policy=policy)


def test_refusal_names_the_allowed_spelling_for_near_misses() -> None:
    policy, _ = POLICY_MATRIX["cheap_openai"]
    with pytest.raises(ForbiddenModel) as caught:
        resolve_model(" GPT-4o-Mini ", policy=policy)
    assert "did you mean 'gpt-4o-mini'" in caught.value.message
    assert caught.value.details["allowed"] == ["gpt-4o-mini"]


@settings(max_examples=500, deadline=None)
@given(
    requested=st.one_of(
        st.text(max_size=40),
        st.sampled_from(sorted(CANONICAL_MODELS | set(MODEL_ALIASES))).flatmap(
            lambda m: st.builds(lambda pre, post: pre + m + post, st.text(max_size=3),
                                st.text(max_size=3))
        ),
        st.none(),
        st.integers(),
        st.lists(st.text(max_size=10), max_size=3),
    ),
    row=st.sampled_from(sorted(POLICY_MATRIX)),
)
def test_property_resolve_model_returns_an_allowed_model_or_raises(
    requested: object, row: str
) -> None:
    policy, _ = POLICY_MATRIX[row]
    try:
        chosen = resolve_model(requested, policy=policy)
    except ForbiddenModel:
        return
    assert chosen in policy.allowed_models
    assert type(chosen) is str


def test_tools_default_to_every_allowed_tool_sorted() -> None:
    policy, _ = POLICY_MATRIX["sim_only"]
    assert resolve_tools(None, policy=policy) == ("list_files", "read_file")


def test_tools_are_exact_deduplicated_and_sorted() -> None:
    policy, _ = POLICY_MATRIX["sim_only"]
    assert resolve_tools(["read_file", "list_files", "read_file"], policy=policy) == (
        "list_files",
        "read_file",
    )
    assert resolve_tools([], policy=policy) == ()


@pytest.mark.parametrize(
    "requested",
    [
        ["write_artifact"],
        ["read_file", "shell"],
        ["READ_FILE"],
        [" read_file"],
        ["read_file\n"],
        ["read\u200bfile"],
        ["read_fil\u0435"],
        ["read_file,write_artifact"],
        ["../read_file"],
    ],
)
def test_forbidden_or_misspelled_tools_are_refused(requested: list[str]) -> None:
    policy, _ = POLICY_MATRIX["sim_only"]
    with pytest.raises(ForbiddenTool, match="not allowed for this tenant"):
        resolve_tools(requested, policy=policy)


@pytest.mark.parametrize(
    "requested",
    ["read_file", {"read_file": True}, {"read_file"}, 1, [["read_file"]], [1], [None], b"read_file"],
)
def test_malformed_tool_requests_are_invalid(requested: object) -> None:
    policy, _ = POLICY_MATRIX["sim_only"]
    with pytest.raises(InvalidRequest):
        resolve_tools(requested, policy=policy)


def test_a_tenant_without_tools_gets_none() -> None:
    policy, _ = POLICY_MATRIX["anthropic_only"]
    assert resolve_tools(None, policy=policy) == ()
    with pytest.raises(ForbiddenTool):
        resolve_tools(["read_file"], policy=policy)


# A model or tool smuggled under another name never reaches the router: the request schema
# (the one production parses every body with) refuses any field it does not declare. These
# are the spellings the removed key-folding scan used to hunt for; the schema refuses them
# all, including ones that scan could not see (an unrelated name, a nested "model").
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task": "t", "engine": "gpt-4o"}, "engine"),
        ({"task": "t", "deployment": "gpt-4o"}, "deployment"),
        ({"task": "t", "model_name": "gpt-4o"}, "model_name"),
        ({"task": "t", "Provider-Model": "gpt-4o"}, "Provider-Model"),
        ({"task": "t", "options": {"model": "gpt-4o"}}, "options"),
        ({"task": "t", "options": {"fallbacks": [{"deployment_id": "x"}]}}, "options"),
        ({"task": "t", "m\u043edel": "gpt-4o"}, "m\u043edel"),
        ({"task": "t", "MODEL": "gpt-4o"}, "MODEL"),
        ({"task": "t", "Model": "gpt-4o", "model": "sim-small"}, "Model"),
        ({"task": "t", "tool_choice": {"function": {"name": "shell"}}}, "tool_choice"),
        ({"task": "t", "functions": [{"name": "shell"}]}, "functions"),
        ({"task": "t", "x": {"y": {"z": {}}}}, "x"),
    ],
)
def test_smuggled_model_or_tool_fields_are_refused_by_the_schema(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RunRequest.model_validate(body)
    errors = caught.value.errors()
    assert [e["type"] for e in errors] == ["extra_forbidden"]
    assert errors[0]["loc"] == (field,)


def test_the_top_level_model_and_tools_fields_are_the_only_way_in() -> None:
    parsed = RunRequest.model_validate({"task": "t", "model": "gpt-4o", "tools": ["read_file"]})
    assert (parsed.model, parsed.tools) == ("gpt-4o", ["read_file"])
    assert set(RunRequest.model_fields) == {"task", "model", "tools"}


@pytest.mark.parametrize("model", [42, ["gpt-4o"], {"name": "gpt-4o"}, True])
def test_a_non_string_model_is_refused_by_the_schema(model: object) -> None:
    with pytest.raises(ValidationError):
        RunRequest.model_validate({"task": "t", "model": model})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"allowed_models": frozenset(), "default_model": "sim-small"}, "non-empty"),
        ({"allowed_models": frozenset({"GPT-4o"}), "default_model": "GPT-4o"}, "unknown ids"),
        ({"allowed_models": frozenset({"gpt-4o-2024-08-06"}), "default_model": "gpt-4o-2024-08-06"},
         "unknown ids"),
        ({"allowed_models": frozenset({"sim-small"}), "default_model": "sim-large"},
         "not in allowed_models"),
    ],
)
def test_bad_tenant_config_fails_loudly(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TenantRouting(allowed_tools=frozenset(), **kwargs)


def test_malformed_tool_names_in_config_fail_loudly() -> None:
    with pytest.raises(ConfigError, match="malformed"):
        TenantRouting(
            allowed_models=frozenset({"sim-small"}),
            default_model="sim-small",
            allowed_tools=frozenset({"read file"}),
        )
