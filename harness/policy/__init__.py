"""Allow/deny policy: rules, decisions and the engine that resolves them (deny wins)."""

from harness.policy.engine import (
    DEFAULT_RULES,
    Decision,
    Effect,
    PolicyEngine,
    Rule,
    rules_from_data,
)

__all__ = [
    "DEFAULT_RULES",
    "Decision",
    "Effect",
    "PolicyEngine",
    "Rule",
    "rules_from_data",
]
