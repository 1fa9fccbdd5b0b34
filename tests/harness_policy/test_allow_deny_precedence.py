"""Conflicting policy rules for the same action: an explicit deny must always win.

Test plan: harness_policy/test_allow_deny_precedence.py. Failure manifestation: ``allow``
wins over an explicit ``deny``. Fixtures: overlapping rule sets, literal-wildcard inputs,
and random rule sets (hypothesis) checked against an independent oracle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import harness.policy
from harness.errors import ConfigError
from harness.policy import DEFAULT_RULES, Decision, Effect, PolicyEngine, Rule, rules_from_data

pytestmark = [pytest.mark.tier0, pytest.mark.security]

ALLOW, DENY = Effect.ALLOW, Effect.DENY
REQUEST = {
    "tenant": "acme",
    "role": "submitter",
    "action": "run:create",
    "resource": "tenant/acme/runs/r-1",
}


@dataclass(frozen=True)
class Overlap:
    """A rule set where several rules match the same request."""

    name: str
    rules: tuple[Rule, ...]
    allowed: bool
    rule_id: str | None


OVERLAPS = [
    Overlap(
        "broad deny-all beats a fully specific allow",
        (
            Rule(ALLOW, "acme", "submitter", "run:create", "tenant/acme/runs/r-1", id="exact"),
            Rule(DENY, id="deny-all"),
        ),
        allowed=False,
        rule_id="deny-all",
    ),
    Overlap(
        "action-prefix deny beats exact action allow",
        (
            Rule(ALLOW, role="submitter", action="run:create", id="allow-create"),
            Rule(DENY, action="run:*", id="freeze-runs"),
        ),
        allowed=False,
        rule_id="freeze-runs",
    ),
    Overlap(
        "resource-prefix deny beats role allow",
        (
            Rule(ALLOW, role="submitter", id="submitter-all"),
            Rule(DENY, resource="tenant/acme/*", id="acme-frozen"),
        ),
        allowed=False,
        rule_id="acme-frozen",
    ),
    Overlap(
        "tenant deny beats global allow-all",
        (Rule(ALLOW, id="allow-all"), Rule(DENY, tenant="acme", id="acme-suspended")),
        allowed=False,
        rule_id="acme-suspended",
    ),
    Overlap(
        "several allows and one deny: deny wins",
        (
            Rule(ALLOW, id="a1"),
            Rule(ALLOW, role="submitter", id="a2"),
            Rule(DENY, role="sub*", action="run:create", id="d1"),
            Rule(ALLOW, action="run:*", id="a3"),
        ),
        allowed=False,
        rule_id="d1",
    ),
    Overlap(
        "two denies: the reported one does not depend on order",
        (Rule(DENY, id="z-deny"), Rule(DENY, role="submitter", id="b-deny"), Rule(ALLOW)),
        allowed=False,
        rule_id="b-deny",
    ),
    Overlap(
        "deny for another tenant does not apply",
        (Rule(ALLOW, role="submitter", id="ok"), Rule(DENY, tenant="globex", id="other")),
        allowed=True,
        rule_id="ok",
    ),
    Overlap(
        "deny for another role does not apply",
        (Rule(ALLOW, action="run:create", id="ok"), Rule(DENY, role="auditor", id="other")),
        allowed=True,
        rule_id="ok",
    ),
    Overlap(
        "deny for a different resource prefix does not apply",
        (Rule(ALLOW, id="ok"), Rule(DENY, resource="tenant/acme/artifacts/*", id="other")),
        allowed=True,
        rule_id="ok",
    ),
    Overlap("only non-matching allows: default deny", (Rule(ALLOW, role="admin"),), False, None),
]


@pytest.mark.parametrize("order", ["as-written", "reversed"])
@pytest.mark.parametrize("case", OVERLAPS, ids=[case.name for case in OVERLAPS])
def test_overlapping_rules_resolve_with_deny_precedence(case: Overlap, order: str) -> None:
    rules = case.rules if order == "as-written" else tuple(reversed(case.rules))

    decision = PolicyEngine(rules).decide(**REQUEST)

    assert decision.allowed is case.allowed
    assert decision.effect is (ALLOW if case.allowed else DENY)
    assert decision.rule_id == case.rule_id


def test_deny_reason_names_the_rule() -> None:
    decision = PolicyEngine([Rule(ALLOW), Rule(DENY, action="run:*", id="freeze")]).decide(
        **REQUEST
    )

    assert decision == Decision(False, DENY, "freeze", "denied by explicit deny rule 'freeze'")


def test_rule_without_id_is_reported_by_its_fields() -> None:
    decision = PolicyEngine([Rule(DENY, action="run:create")]).decide(**REQUEST)

    assert decision.rule_id == "deny tenant=* role=* action=run:create resource=*"


def test_no_rules_means_default_deny() -> None:
    decision = PolicyEngine([]).decide(**REQUEST)

    assert decision.allowed is False
    assert decision.effect is DENY
    assert decision.rule_id is None
    assert "default deny" in decision.reason


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        ("submitter", "run:create", True),
        ("submitter", "run:read", True),
        ("submitter", "approval:decide", False),
        ("submitter", "audit:read", False),
        ("approver", "approval:decide", True),
        ("approver", "run:read", True),
        ("approver", "run:create", False),
        ("auditor", "audit:read", True),
        ("auditor", "run:read", True),
        ("auditor", "approval:decide", False),
        ("admin", "tenant:manage", True),
        ("admin", "run:create", False),
        ("admin", "approval:decide", False),
        ("guest", "run:read", False),
    ],
)
def test_default_rules_role_matrix(role: str, action: str, allowed: bool) -> None:
    engine = PolicyEngine(DEFAULT_RULES)

    decision = engine.decide(
        tenant="acme", role=role, action=action, resource="tenant/acme/runs/r-1"
    )

    assert decision.allowed is allowed


def test_default_rules_refuse_resources_outside_tenant_namespace() -> None:
    decision = PolicyEngine(DEFAULT_RULES).decide(
        tenant="acme", role="submitter", action="run:create", resource="runs/r-1"
    )

    assert decision.allowed is False


def test_explicit_deny_added_to_default_rules_wins() -> None:
    engine = PolicyEngine([*DEFAULT_RULES, Rule(DENY, tenant="acme", action="run:create")])

    assert not engine.decide(**REQUEST).allowed
    assert engine.decide(**{**REQUEST, "tenant": "globex"}).allowed


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("action", "Run:create"),
        ("action", "RUN:CREATE"),
        ("action", "run:create "),
        ("action", " run:create"),
        ("action", "run:create\u200b"),
        ("action", "run：create"),
        ("action", "run"),
        ("role", "Submitter"),
        ("role", "submitter\x00"),
        ("resource", "Tenant/acme/runs/r-1"),
        ("resource", "tenant"),
        ("resource", "tenant\\acme\\runs\\r-1"),
    ],
)
def test_matching_is_exact_without_normalisation(field: str, value: str) -> None:
    engine = PolicyEngine(DEFAULT_RULES)
    assert engine.decide(**REQUEST).allowed, "precondition: the unmodified request is allowed"

    assert engine.decide(**{**REQUEST, field: value}).allowed is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("action", "*"),
        ("action", "run:*"),
        ("role", "*"),
        ("role", "sub*"),
        ("tenant", "*"),
        ("resource", "*"),
        ("resource", "tenant/*"),
    ],
)
def test_wildcards_in_requests_are_literal_characters(field: str, value: str) -> None:
    rules = [Rule(ALLOW, "acme", "submitter", "run:create", "tenant/acme/runs/*")]
    engine = PolicyEngine(rules)
    assert engine.decide(**REQUEST).allowed, "precondition: the unmodified request is allowed"

    assert engine.decide(**{**REQUEST, field: value}).allowed is False


def test_literal_star_input_cannot_dodge_a_specific_deny_into_an_allow_all() -> None:
    # The request "*" is not "run:create", so the run:create deny does not match; but the
    # request must also not be treated as "every action", which would need the deny.
    engine = PolicyEngine([Rule(ALLOW, action="*"), Rule(DENY, action="run:create")])

    assert engine.decide(**{**REQUEST, "action": "*"}).allowed is True
    assert engine.decide(**REQUEST).allowed is False


@pytest.mark.parametrize("field", ["tenant", "role", "action", "resource"])
def test_empty_request_field_is_denied_even_under_allow_all(field: str) -> None:
    decision = PolicyEngine([Rule(ALLOW)]).decide(**{**REQUEST, field: ""})

    assert decision.allowed is False
    assert decision.rule_id is None


def test_deny_for_any_held_role_beats_allow_for_another() -> None:
    engine = PolicyEngine([*DEFAULT_RULES, Rule(DENY, role="suspended", id="suspended")])
    request = {k: v for k, v in REQUEST.items() if k != "role"}

    assert engine.decide_any_role(roles=["submitter"], **request).allowed
    decision = engine.decide_any_role(roles=["submitter", "suspended"], **request)
    assert decision.allowed is False
    assert decision.rule_id == "suspended"
    assert engine.decide_any_role(roles=[], **request).allowed is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": ""}, "empty"),
        ({"action": "run*create"}, "only allowed once"),
        ({"action": "run:**"}, "only allowed once"),
        ({"resource": "*/runs"}, "only allowed once"),
        ({"role": "sub?itter"}, "unsupported glob"),
        ({"role": "[sa]dmin"}, "unsupported glob"),
        ({"tenant": "{acme,globex}"}, "unsupported glob"),
        ({"tenant": " acme"}, "whitespace"),
        ({"tenant": 3}, "must be a string"),
    ],
)
def test_rule_refuses_ambiguous_patterns(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Rule(ALLOW, **kwargs)  # type: ignore[arg-type]


def test_rule_refuses_effect_given_as_plain_string() -> None:
    with pytest.raises(ValueError, match="Effect"):
        Rule("allow")  # type: ignore[arg-type]


def test_engine_refuses_duplicate_rule_ids() -> None:
    with pytest.raises(ValueError, match="duplicate rule id 'x'"):
        PolicyEngine([Rule(ALLOW, id="x"), Rule(DENY, id="x")])


def test_rules_from_data_builds_rules() -> None:
    rules = rules_from_data(
        [
            {"effect": "allow", "role": "submitter", "action": "run:*", "id": "a"},
            {"effect": "deny", "tenant": "acme"},
        ]
    )

    assert rules == [
        Rule(ALLOW, role="submitter", action="run:*", id="a"),
        Rule(DENY, tenant="acme"),
    ]
    assert PolicyEngine(rules).decide(**REQUEST).allowed is False


@pytest.mark.parametrize(
    ("data", "where", "field"),
    [
        ([{"effect": "allow"}, {"effect": "permit"}], "rules[1].effect", "effect"),
        ([{"role": "admin"}], "rules[0].effect", "effect"),
        ([{"effect": "allow"}, {}, {"effect": "deny", "action": "a*b"}], "rules[1]", "effect"),
        ([{"effect": "allow"}, {"effect": "deny", "action": "a*b"}], "rules[1].action", "action"),
        ([{"effect": "deny", "tenant": ""}], "rules[0].tenant", "tenant"),
        ([{"effect": "deny", "id": 7}], "rules[0].id", "id"),
        ([{"effect": "allow", "actoin": "run:read"}], "rules[0]", "actoin"),
    ],
)
def test_rules_from_data_errors_name_index_and_field(
    data: list[dict[str, object]], where: str, field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        rules_from_data(data)

    assert where in caught.value.message
    assert caught.value.details["field"] == field


@pytest.mark.parametrize("data", ["effect: allow", [["allow"]], {"effect": "allow"}])
def test_rules_from_data_refuses_non_list_of_mappings(data: object) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        rules_from_data(data)  # type: ignore[arg-type]


def test_rules_from_data_refuses_duplicate_ids() -> None:
    with pytest.raises(ConfigError, match="duplicate rule id"):
        rules_from_data([{"effect": "allow", "id": "r"}, {"effect": "deny", "id": "r"}])


def test_public_names_are_pinned() -> None:
    assert sorted(harness.policy.__all__) == [
        "DEFAULT_RULES",
        "Decision",
        "Effect",
        "PolicyEngine",
        "Rule",
        "rules_from_data",
    ]


# --- properties over random overlapping rule sets -------------------------------------

# Small pools so random rules overlap often; requests include literal "*" characters.
PATTERNS = {
    "tenant": ["*", "acme", "globex", "ac*", "a*"],
    "role": ["*", "submitter", "approver", "sub*", "admin"],
    "action": ["*", "run:create", "run:read", "run:*", "audit:read", "r*"],
    "resource": ["*", "tenant/acme/runs/1", "tenant/acme/*", "tenant/*", "tenant/globex/*"],
}
VALUES = {
    "tenant": ["acme", "globex", "ac", "a*", "*", "ACME"],
    "role": ["submitter", "approver", "admin", "sub", "*", "sub*"],
    "action": ["run:create", "run:read", "run:*", "*", "audit:read", "r"],
    "resource": ["tenant/acme/runs/1", "tenant/globex/runs/2", "tenant/*", "*", "tenant/"],
}

rule_fields = st.fixed_dictionaries(
    {"effect": st.sampled_from(Effect)}
    | {name: st.sampled_from(pool) for name, pool in PATTERNS.items()}
)
rule_sets = st.lists(rule_fields, max_size=8).map(
    lambda items: [Rule(**fields, id=f"r{i}") for i, fields in enumerate(items)]
)
requests = st.fixed_dictionaries({name: st.sampled_from(pool) for name, pool in VALUES.items()})


def oracle_matches(rule: Rule, request: dict[str, str]) -> bool:
    """An independent matcher: prefix globs become anchored regexes over escaped text."""
    for name, value in request.items():
        pattern: str = getattr(rule, name)
        literal, star = (pattern[:-1], ".*") if pattern.endswith("*") else (pattern, "")
        regex = re.escape(literal) + star
        if re.fullmatch(regex, value, flags=re.DOTALL) is None:
            return False
    return True


@settings(max_examples=300, database=None, deadline=None)
@given(rules=rule_sets, request=requests)
def test_any_matching_deny_means_deny_and_no_match_means_deny(
    rules: list[Rule], request: dict[str, str]
) -> None:
    matching = [rule for rule in rules if oracle_matches(rule, request)]

    decision = PolicyEngine(rules).decide(**request)

    if any(rule.effect is DENY for rule in matching):
        assert decision.allowed is False
        assert decision.effect is DENY
        assert decision.rule_id in {r.id for r in matching if r.effect is DENY}
    elif matching:
        assert decision.allowed is True
        assert decision.rule_id in {r.id for r in matching}
    else:
        assert decision.allowed is False
        assert decision.rule_id is None


@settings(max_examples=200, database=None, deadline=None)
@given(data=st.data(), rules=rule_sets, request=requests)
def test_decision_does_not_depend_on_rule_order(
    data: st.DataObject, rules: list[Rule], request: dict[str, str]
) -> None:
    shuffled = data.draw(st.permutations(rules))

    assert PolicyEngine(shuffled).decide(**request) == PolicyEngine(rules).decide(**request)


@settings(max_examples=200, database=None, deadline=None)
@given(rules=rule_sets, request=requests, position=st.integers(min_value=0, max_value=8))
def test_adding_a_matching_deny_always_flips_to_deny(
    rules: list[Rule], request: dict[str, str], position: int
) -> None:
    deny = Rule(DENY, **request, id="added-deny")  # exact values: matches only this request
    rules.insert(min(position, len(rules)), deny)

    decision = PolicyEngine(rules).decide(**request)

    assert decision.allowed is False
    assert decision.effect is DENY
