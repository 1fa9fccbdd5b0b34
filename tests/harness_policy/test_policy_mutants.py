"""Mutation-testing kills for the policy engine: exact refusals, reasons and the default grants.

Each test pins something a mutant changed without any other test noticing: the field an empty
request value is reported under, the effect and reason of every decision, the index and field
a rules-file error names, and the built-in role grants table (built at import time, so mutmut
cannot mutate it: hand mutants in gates/hand_mutants.yaml do).
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import ConfigError
from harness.policy.engine import DEFAULT_RULES, Effect, PolicyEngine, Rule, rules_from_data

pytestmark = [pytest.mark.tier0, pytest.mark.security]

OK = {"tenant": "acme", "action": "run:read", "resource": "tenant/acme"}


@pytest.mark.parametrize("field", ["tenant", "action", "resource", "role"])
@pytest.mark.parametrize("bad", ["", None])
def test_an_empty_request_field_is_denied_and_named(field: str, bad: Any) -> None:
    engine = PolicyEngine([Rule(Effect.ALLOW)])
    request: dict[str, Any] = {**OK, "roles": ("submitter",)}
    if field == "role":
        request["roles"] = (bad,)
    else:
        request[field] = bad
    decision = engine.decide_any_role(**request)
    assert (decision.allowed, decision.effect, decision.rule_id) == (False, Effect.DENY, None)
    assert decision.reason == f"request field {field!r} is empty or not a string; denied"


def test_an_allow_names_its_rule() -> None:
    decision = PolicyEngine([Rule(Effect.ALLOW, action="run:*", id="r1")]).decide(role="x", **OK)
    assert (decision.allowed, decision.effect, decision.rule_id) == (True, Effect.ALLOW, "r1")
    assert decision.reason == "allowed by rule 'r1'"


def test_the_default_role_grants_are_exactly_these() -> None:
    # Spelled out, not derived: the table is built at import time (hand mutants cover it).
    assert [(r.effect, r.tenant, r.role, r.action, r.resource, r.id) for r in DEFAULT_RULES] == [
        (Effect.ALLOW, "*", "submitter", "run:create", "tenant/*", "default.submitter.run-create"),
        (Effect.ALLOW, "*", "submitter", "run:read", "tenant/*", "default.submitter.run-read"),
        (Effect.ALLOW, "*", "approver", "approval:decide", "tenant/*", "default.approver.approval-decide"),
        (Effect.ALLOW, "*", "approver", "run:read", "tenant/*", "default.approver.run-read"),
        (Effect.ALLOW, "*", "auditor", "audit:read", "tenant/*", "default.auditor.audit-read"),
        (Effect.ALLOW, "*", "auditor", "run:read", "tenant/*", "default.auditor.run-read"),
        (Effect.ALLOW, "*", "admin", "tenant:manage", "tenant/*", "default.admin.tenant-manage"),
    ]


@pytest.mark.parametrize(
    ("data", "message", "details"),
    [
        ([7], "policy rules[0] must be a mapping, got int", {"index": 0}),
        (
            [{"effect": "allow"}, {"role": "x"}],
            "policy rules[1].effect is missing; use 'allow' or 'deny'",
            {"index": 1, "field": "effect"},
        ),
        (
            [{"effect": "maybe"}],
            "policy rules[0].effect = 'maybe' is not one of 'allow', 'deny'",
            {"index": 0, "field": "effect"},
        ),
        (
            [{"effect": "allow", "colour": "red"}],
            "policy rules[0] has unknown field(s) ['colour']",
            {"index": 0, "field": "colour"},
        ),
        (
            [{"effect": "deny", "id": 5}],
            "policy rules[0].id is invalid: must be a string, got int",
            {"index": 0, "field": "id"},
        ),
        (
            [{"effect": "deny", "role": 5}],
            "policy rules[0].role is invalid: rule field 'role' must be a string, got int",
            {"index": 0, "field": "role"},
        ),
        ([{"effect": "deny", "id": "id*"}], None, None),
    ],
)
def test_rules_file_errors_name_index_field_and_cause(
    data: list[Any], message: str | None, details: dict[str, Any] | None
) -> None:
    if message is None:  # an id is free text: '*' is not a glob there
        assert rules_from_data(data)[0].id == "id*"
        return
    with pytest.raises(ConfigError) as info:
        rules_from_data(data)
    assert str(info.value).startswith(message)
    assert info.value.details == details


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (
            "a*b",
            "rule field 'action' = 'a*b': '*' is only allowed once, as the last character "
            "(exact value, '*', or a prefix glob such as 'runs/*')",
        ),
        (
            "run[s]",
            "rule field 'action' = 'run[s]': unsupported glob syntax '[]'; only a trailing '*' is supported",
        ),
        (
            "run?",
            "rule field 'action' = 'run?': unsupported glob syntax '?'; only a trailing '*' is supported",
        ),
        (3.5, "rule field 'action' must be a string, got float"),
    ],
)
def test_pattern_refusals_say_what_is_allowed(pattern: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Rule(Effect.ALLOW, action=pattern)
    assert str(info.value) == message


def test_rules_must_be_a_list_and_hold_rules() -> None:
    for data, kind in (("allow", "str"), ({"effect": "allow"}, "dict"), (None, "NoneType")):
        with pytest.raises(ConfigError, match=rf"^policy rules must be a list of mappings, got {kind}$"):
            rules_from_data(data)  # type: ignore[arg-type]
    assert rules_from_data(()) == []  # a tuple is a sequence: accepted
    with pytest.raises(ValueError, match=r"^rules\[1\] is str, not a Rule$"):
        PolicyEngine([Rule(Effect.ALLOW), "allow"])  # type: ignore[list-item]


def test_a_non_string_rule_id_is_refused_with_its_type() -> None:
    with pytest.raises(ValueError, match=r"^rule id must be a string, got int$"):
        Rule(Effect.DENY, id=5)  # type: ignore[arg-type]
