"""Allow/deny rules and the engine that resolves them, with explicit deny beating any allow.

Pure: this module does no I/O. A rule field is an exact value, ``"*"`` (anything) or a
prefix glob ending in a single ``"*"`` (``"runs/*"``). Request values are always compared
literally: a ``"*"`` in a request is just a character, never a wildcard.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Final

from harness.errors import ConfigError

__all__ = [
    "DEFAULT_RULES",
    "Decision",
    "Effect",
    "PolicyEngine",
    "Rule",
    "rules_from_data",
]

_MATCH_FIELDS: Final = ("tenant", "role", "action", "resource")
# Characters other glob dialects treat as syntax; refusing them keeps a rule from looking
# broader (or narrower) than it is.
_GLOB_SYNTAX: Final = frozenset("?[]{}")


class Effect(StrEnum):
    """What a matching rule does."""

    ALLOW = "allow"
    DENY = "deny"


def _validate_pattern(field_name: str, pattern: object) -> None:
    if not isinstance(pattern, str):
        kind = type(pattern).__name__
        raise ValueError(f"rule field {field_name!r} must be a string, got {kind}")
    if not pattern:
        raise ValueError(f"rule field {field_name!r} is empty; use '*' to match anything")
    if "*" in pattern[:-1]:
        raise ValueError(
            f"rule field {field_name!r} = {pattern!r}: '*' is only allowed once, as the last "
            "character (exact value, '*', or a prefix glob such as 'runs/*')"
        )
    bad = sorted(_GLOB_SYNTAX.intersection(pattern))
    if bad:
        raise ValueError(
            f"rule field {field_name!r} = {pattern!r}: unsupported glob syntax {''.join(bad)!r}; "
            "only a trailing '*' is supported"
        )
    if pattern != pattern.strip():
        raise ValueError(f"rule field {field_name!r} = {pattern!r} has surrounding whitespace")


def _matches(pattern: str, value: str) -> bool:
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


@dataclass(frozen=True)
class Rule:
    """One allow or deny statement; every field must match for the rule to apply."""

    effect: Effect
    tenant: str = "*"
    role: str = "*"
    action: str = "*"
    resource: str = "*"
    id: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.effect, Effect):
            raise ValueError(f"rule effect must be an Effect, got {self.effect!r}")
        for name in _MATCH_FIELDS:
            _validate_pattern(name, getattr(self, name))
        if not isinstance(self.id, str):
            raise ValueError(f"rule id must be a string, got {type(self.id).__name__}")

    def matches(self, *, tenant: str, role: str, action: str, resource: str) -> bool:
        """Whether every field of this rule matches the request."""
        return (
            _matches(self.tenant, tenant)
            and _matches(self.role, role)
            and _matches(self.action, action)
            and _matches(self.resource, resource)
        )

    @property
    def label(self) -> str:
        """The rule id, or a description of the rule when it has none."""
        if self.id:
            return self.id
        return (
            f"{self.effect} tenant={self.tenant} role={self.role} "
            f"action={self.action} resource={self.resource}"
        )

    def _sort_key(self) -> tuple[str, ...]:
        return (self.id, self.effect, self.tenant, self.role, self.action, self.resource)


@dataclass(frozen=True)
class Decision:
    """The engine's answer; ``rule_id`` is None when nothing matched (default deny)."""

    allowed: bool
    effect: Effect
    rule_id: str | None
    reason: str


class PolicyEngine:
    """Resolves requests against rules: any matching deny wins, then any allow, else deny."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules: tuple[Rule, ...] = tuple(rules)
        seen: set[str] = set()
        for index, rule in enumerate(self._rules):
            if not isinstance(rule, Rule):
                raise ValueError(f"rules[{index}] is {type(rule).__name__}, not a Rule")
            if rule.id and rule.id in seen:
                raise ValueError(f"rules[{index}]: duplicate rule id {rule.id!r}")
            seen.add(rule.id)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in the order given (order never changes a decision)."""
        return self._rules

    def decide(self, *, tenant: str, role: str, action: str, resource: str) -> Decision:
        """Decide one request; explicit deny beats allow at any specificity, default deny."""
        return self.decide_any_role(tenant=tenant, roles=(role,), action=action, resource=resource)

    def decide_any_role(
        self, *, tenant: str, roles: Iterable[str], action: str, resource: str
    ) -> Decision:
        """Decide for a principal holding several roles: a deny for any role beats every allow.

        Calling ``decide`` per role and OR-ing the answers would let one role's allow
        override another role's explicit deny; this keeps deny precedence across roles.
        """
        role_list = tuple(roles)
        values = {"tenant": tenant, "action": action, "resource": resource}
        for name, value in (*values.items(), *(("role", r) for r in role_list)):
            if not isinstance(value, str) or not value:
                return Decision(
                    allowed=False,
                    effect=Effect.DENY,
                    rule_id=None,
                    reason=f"request field {name!r} is empty or not a string; denied",
                )
        matched = [
            rule
            for rule in self._rules
            for role in role_list
            if rule.matches(tenant=tenant, role=role, action=action, resource=resource)
        ]
        # Picking the smallest matching rule by a total key makes the reported rule (not
        # just the verdict) independent of the order the rules were written in.
        denies = [rule for rule in matched if rule.effect is Effect.DENY]
        if denies:
            rule = min(denies, key=Rule._sort_key)
            return Decision(
                allowed=False,
                effect=Effect.DENY,
                rule_id=rule.label,
                reason=f"denied by explicit deny rule {rule.label!r}",
            )
        if matched:
            rule = min(matched, key=Rule._sort_key)
            return Decision(
                allowed=True,
                effect=Effect.ALLOW,
                rule_id=rule.label,
                reason=f"allowed by rule {rule.label!r}",
            )
        return Decision(
            allowed=False,
            effect=Effect.DENY,
            rule_id=None,
            reason=(
                f"no rule allows action {action!r} on {resource!r} for roles "
                f"{list(role_list)!r} in tenant {tenant!r}; default deny"
            ),
        )


_RULE_KEYS: Final = frozenset(f.name for f in fields(Rule))


def rules_from_data(data: Sequence[Mapping[str, Any]]) -> list[Rule]:
    """Build rules from plain data (e.g. a parsed YAML file); errors name the index and field."""
    if isinstance(data, str | bytes) or not isinstance(data, Sequence):
        raise ConfigError(f"policy rules must be a list of mappings, got {type(data).__name__}")
    rules = [_rule_from_mapping(index, item) for index, item in enumerate(data)]
    try:
        PolicyEngine(rules)
    except ValueError as exc:
        raise ConfigError(f"policy rules are inconsistent: {exc}") from exc
    return rules


def _rule_from_mapping(index: int, item: object) -> Rule:
    where = f"policy rules[{index}]"
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(item).__name__}", index=index)
    unknown = sorted(str(key) for key in item if key not in _RULE_KEYS)
    if unknown:
        raise ConfigError(
            f"{where} has unknown field(s) {unknown}; allowed: {sorted(_RULE_KEYS)}",
            index=index,
            field=unknown[0],
        )
    if "effect" not in item:
        raise ConfigError(
            f"{where}.effect is missing; use 'allow' or 'deny'", index=index, field="effect"
        )
    raw_effect = item["effect"]
    try:
        effect = Effect(raw_effect)
    except ValueError:
        raise ConfigError(
            f"{where}.effect = {raw_effect!r} is not one of 'allow', 'deny'",
            index=index,
            field="effect",
        ) from None
    values: dict[str, str] = {}
    for name in (*_MATCH_FIELDS, "id"):
        if name not in item:
            continue
        value = item[name]
        try:
            if name != "id":
                _validate_pattern(name, value)
            elif not isinstance(value, str):
                raise ValueError(f"must be a string, got {type(value).__name__}")
        except ValueError as exc:
            raise ConfigError(f"{where}.{name} is invalid: {exc}", index=index, field=name) from exc
        values[name] = value
    return Rule(effect, **values)


def _allow(role: str, action: str) -> Rule:
    return Rule(
        Effect.ALLOW,
        role=role,
        action=action,
        resource="tenant/*",
        id=f"default.{role}.{action.replace(':', '-')}",
    )


# Built-in role grants. Tenant scoping is enforced by the data layer; these rules only
# say which role may perform which action on tenant-namespaced resources.
DEFAULT_RULES: Final[tuple[Rule, ...]] = (
    _allow("submitter", "run:create"),
    _allow("submitter", "run:read"),
    _allow("approver", "approval:decide"),
    _allow("approver", "run:read"),
    _allow("auditor", "audit:read"),
    _allow("auditor", "run:read"),
    _allow("admin", "tenant:manage"),
)
