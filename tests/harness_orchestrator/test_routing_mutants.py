"""Mutation-testing kills for the routing policy: exact refusals, the hint and the tool-count
boundary. Each test pins behaviour a mutant changed unnoticed. (Smuggled model fields are refused
by the request schema alone, tested in test_model_router_policy_bypass.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import ForbiddenModel, ForbiddenTool, InvalidRequest
from harness.orchestrator.routing import (
    CANONICAL_MODELS,
    MODEL_ALIASES,
    TenantRouting,
    resolve_model,
    resolve_tools,
)

pytestmark = [pytest.mark.tier0, pytest.mark.security]

POLICY = TenantRouting(
    allowed_models=frozenset({"sim-small", "gpt-4o"}),
    default_model="sim-small",
    allowed_tools=frozenset({"list_files", "read_file"}),
)


def test_refusals_name_the_value_the_choices_and_the_details() -> None:
    with pytest.raises(ForbiddenModel) as info:
        resolve_model("gpt-5", policy=POLICY)
    assert str(info.value) == (
        "model 'gpt-5' is not allowed for this tenant; choose one of: gpt-4o, sim-small, "
        "or omit it for the default 'sim-small'"
    )
    assert info.value.details == {"requested": "'gpt-5'", "allowed": ["gpt-4o", "sim-small"]}
    with pytest.raises(ForbiddenModel) as info:
        resolve_model(7, policy=POLICY)
    assert (
        str(info.value)
        == "model must be a plain string, got a value of type int; choose one of: gpt-4o, sim-small"
    )
    assert info.value.details == {"requested": "a value of type int", "allowed": ["gpt-4o", "sim-small"]}


@pytest.mark.parametrize(
    ("spelling", "hint"),
    [
        (" GPT-4o ", "gpt-4o"),
        ("ＧＰＴ-４ｏ", "gpt-4o"),
        ("gpt-4o-2024-08-06 ", "gpt-4o"),
        ("gpt\u200b-4o", "gpt-4o"),
    ],
)
def test_near_misses_get_the_exact_spelling_as_a_hint(spelling: str, hint: str) -> None:
    with pytest.raises(ForbiddenModel) as info:
        resolve_model(spelling, policy=POLICY)
    assert f"model names are exact; did you mean {hint!r}?" in str(info.value)


def test_no_hint_for_a_model_the_tenant_lacks_even_when_it_is_canonical() -> None:
    with pytest.raises(ForbiddenModel) as info:
        resolve_model("Claude-3-5-Haiku", policy=POLICY)
    assert "did you mean" not in str(info.value)


def test_long_values_are_cut_to_64_characters_in_messages() -> None:
    for n, shown in ((64, "m" * 64), (65, "m" * 63 + "…")):
        with pytest.raises(ForbiddenModel) as info:
            resolve_model("m" * n, policy=POLICY)
        assert info.value.details["requested"] == repr(shown)


def test_tool_count_boundary_and_shape_errors() -> None:
    wide = TenantRouting(
        allowed_models=frozenset({"sim-small"}),
        default_model="sim-small",
        allowed_tools=frozenset({f"t{i}" for i in range(70)}),
    )
    assert len(resolve_tools([f"t{i}" for i in range(64)], policy=wide)) == 64
    with pytest.raises(InvalidRequest, match=r"^at most 64 tools may be requested$") as info:
        resolve_tools([f"t{i}" for i in range(65)], policy=wide)
    assert info.value.details == {"field": "tools"}
    with pytest.raises(InvalidRequest) as info:
        resolve_tools("read_file", policy=POLICY)
    assert str(info.value) == "tools must be a list of tool names, got 'read_file'"
    assert info.value.details == {"field": "tools"}
    with pytest.raises(ForbiddenTool) as info2:
        resolve_tools(["write_artifact", "read_file"], policy=POLICY)
    assert info2.value.details == {"requested": ["'write_artifact'"], "allowed": ["list_files", "read_file"]}


def test_the_model_tables_are_exactly_these() -> None:
    # Built at import time (mutmut cannot mutate them): spelled out here, attacked by hand mutants.
    assert (
        frozenset({"sim-small", "sim-large", "gpt-4o-mini", "gpt-4o", "claude-3-5-haiku"}) == CANONICAL_MODELS
    )
    assert dict(MODEL_ALIASES) == {
        "gpt-4o-2024-08-06": "gpt-4o",
        "gpt-4o-2024-11-20": "gpt-4o",
        "gpt-4o-mini-2024-07-18": "gpt-4o-mini",
        "claude-3-5-haiku-latest": "claude-3-5-haiku",
        "claude-3-5-haiku-20241022": "claude-3-5-haiku",
    }


def test_tool_name_refusals_list_at_most_three_and_five_and_say_none() -> None:
    with pytest.raises(InvalidRequest) as info:
        resolve_tools(["read_file", 1, 2.0, None, b"x"], policy=POLICY)
    assert str(info.value) == (
        "tool names must be plain strings, got a value of type int, a value of type float, "
        "a value of type NoneType"
    )
    assert info.value.details == {"field": "tools"}
    many = [f"x{i}" for i in range(7)]
    with pytest.raises(ForbiddenTool) as denied:
        resolve_tools(many, policy=POLICY)
    shown = ", ".join(repr(n) for n in sorted(many)[:5])
    assert str(denied.value) == (
        f"tool(s) {shown} are not allowed for this tenant; allowed tools: list_files, read_file"
    )
    assert denied.value.details["requested"] == [repr(n) for n in sorted(many)[:5]]
    bare = TenantRouting(
        allowed_models=frozenset({"sim-small"}), default_model="sim-small", allowed_tools=frozenset()
    )
    with pytest.raises(ForbiddenTool, match=r"allowed tools: none$"):
        resolve_tools(["read_file"], policy=bare)


def test_a_tuple_of_tools_is_accepted_and_a_list_subclass_is_not() -> None:
    class Sneaky(list):  # type: ignore[type-arg]
        pass

    assert resolve_tools(("read_file", "read_file"), policy=POLICY) == ("read_file",)
    with pytest.raises(InvalidRequest, match="got a value of type Sneaky"):
        resolve_tools(Sneaky(["read_file"]), policy=POLICY)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"allowed_models": frozenset()},
            "allowed_models must be a non-empty frozenset of canonical model ids",
        ),
        ({"allowed_tools": {"read_file"}}, "allowed_tools must be a frozenset of tool names"),
        (
            {"allowed_tools": frozenset({"Read", 3})},
            "allowed_tools has malformed names [\"'Read'\", '3']; use [a-z][a-z0-9_]*",
        ),
    ],
)
def test_bad_tenant_config_is_refused_with_the_fix(kwargs: dict[str, Any], message: str) -> None:
    from harness.errors import ConfigError

    base: dict[str, Any] = {
        "allowed_models": frozenset({"sim-small"}),
        "default_model": "sim-small",
        "allowed_tools": frozenset({"read_file"}),
    }
    with pytest.raises(ConfigError) as info:
        TenantRouting(**{**base, **kwargs})
    assert str(info.value) == message


def test_non_ascii_noise_is_dropped_before_the_hint_is_chosen() -> None:
    with pytest.raises(ForbiddenModel) as info:
        resolve_model("gpt-4oé", policy=POLICY)
    assert "did you mean 'gpt-4o'?" in str(info.value)
