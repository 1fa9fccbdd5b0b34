"""Per-tenant model and tool routing: a request may only select what its tenant allows.

Model names are matched **exactly**, never normalised: no casefolding, stripping or Unicode
folding happens before the allowlist check. The set of strings that can select a model is
therefore finite and enumerable (the allowed canonical ids, the aliases resolving to them,
``"default"`` and the empty string), so no spelling trick can reach a model the tenant was
not given. Near misses are refused with a hint naming the allowed spelling.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from harness.errors import ConfigError, ForbiddenModel, ForbiddenTool, InvalidRequest

CANONICAL_MODELS: Final[frozenset[str]] = frozenset({
    "sim-small", "sim-large", "gpt-4o-mini", "gpt-4o", "claude-3-5-haiku",
})
DEFAULT_MODEL_ALIAS: Final = "default"  # resolves to the tenant's own default_model
MODEL_ALIASES: Final[Mapping[str, str]] = MappingProxyType({
    "gpt-4o-2024-08-06": "gpt-4o",
    "gpt-4o-2024-11-20": "gpt-4o",
    "gpt-4o-mini-2024-07-18": "gpt-4o-mini",
    "claude-3-5-haiku-latest": "claude-3-5-haiku",
    "claude-3-5-haiku-20241022": "claude-3-5-haiku",
})

_TOOL_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_TOOLS = 64


@dataclass(frozen=True)
class TenantRouting:
    """What one tenant may route to; validated on construction so bad config fails loudly."""

    allowed_models: frozenset[str]
    default_model: str
    allowed_tools: frozenset[str]

    def __post_init__(self) -> None:
        if not isinstance(self.allowed_models, frozenset) or not self.allowed_models:
            raise ConfigError("allowed_models must be a non-empty frozenset of canonical model ids")
        unknown = sorted(m for m in self.allowed_models if m not in CANONICAL_MODELS)
        if unknown:
            raise ConfigError(
                f"allowed_models has unknown ids {unknown}; canonical ids are "
                f"{sorted(CANONICAL_MODELS)} (aliases are not allowed in tenant config)"
            )
        if self.default_model not in self.allowed_models:
            raise ConfigError(
                f"default_model {self.default_model!r} is not in allowed_models "
                f"{sorted(self.allowed_models)}"
            )
        if not isinstance(self.allowed_tools, frozenset):
            raise ConfigError("allowed_tools must be a frozenset of tool names")
        bad = sorted(
            repr(t) for t in self.allowed_tools if type(t) is not str or not _TOOL_NAME.fullmatch(t)
        )
        if bad:
            raise ConfigError(f"allowed_tools has malformed names {bad}; use [a-z][a-z0-9_]*")


def _describe(value: object) -> str:
    """A short, safe description of a rejected value (never calls a foreign __repr__)."""
    if type(value) is str:
        return repr(value if len(value) <= 64 else value[:63] + "…")
    return f"a value of type {type(value).__name__}"


def _near_miss(requested: str, allowed: frozenset[str]) -> str | None:
    """The allowed id a sloppy or disguised spelling resembles, for the error message only."""
    folded = unicodedata.normalize("NFKC", requested).casefold().strip()
    folded = "".join(c for c in folded if c.isascii() and c.isprintable())
    folded = MODEL_ALIASES.get(folded, folded)
    return folded if folded in allowed and folded != requested else None


def resolve_model(requested: object, *, policy: TenantRouting) -> str:
    """The canonical model id for ``requested``; None, "" and "default" mean the tenant default.

    Raises ``ForbiddenModel`` for anything else that is not exactly an allowed canonical id
    or a known alias of one, including non-strings and str subclasses.
    """
    allowed = policy.allowed_models
    choices = ", ".join(sorted(allowed))
    if requested is None:
        return policy.default_model
    if type(requested) is not str:  # a str subclass could lie in __eq__/__hash__
        raise ForbiddenModel(
            f"model must be a plain string, got {_describe(requested)}; choose one of: {choices}",
            requested=_describe(requested), allowed=sorted(allowed),
        )
    if requested in ("", DEFAULT_MODEL_ALIAS):
        return policy.default_model
    canonical = MODEL_ALIASES.get(requested, requested)
    if canonical in allowed:
        return canonical
    hint = _near_miss(requested, allowed)
    advice = (
        f"model names are exact; did you mean {hint!r}?" if hint
        else f"choose one of: {choices}, or omit it for the default {policy.default_model!r}"
    )
    raise ForbiddenModel(
        f"model {_describe(requested)} is not allowed for this tenant; {advice}",
        requested=_describe(requested), allowed=sorted(allowed),
    )


def resolve_tools(requested: object, *, policy: TenantRouting) -> tuple[str, ...]:
    """The tools a run may use: None means every allowed tool; otherwise an exact list.

    The result is deduplicated and sorted. A wrong shape raises ``InvalidRequest``; a tool
    the tenant does not allow raises ``ForbiddenTool``. An empty list means no tools.
    """
    if requested is None:
        return tuple(sorted(policy.allowed_tools))
    # exact types: a str is iterable and a subclass could lie about its items
    if not isinstance(requested, (list, tuple)) or type(requested) not in (list, tuple):
        raise InvalidRequest(
            f"tools must be a list of tool names, got {_describe(requested)}", field="tools"
        )
    if len(requested) > _MAX_TOOLS:
        raise InvalidRequest(f"at most {_MAX_TOOLS} tools may be requested", field="tools")
    not_strings = [_describe(t) for t in requested if type(t) is not str]
    if not_strings:
        raise InvalidRequest(
            f"tool names must be plain strings, got {', '.join(not_strings[:3])}", field="tools"
        )
    names: list[str] = list(requested)
    forbidden = sorted({n for n in names if n not in policy.allowed_tools})
    if forbidden:
        raise ForbiddenTool(
            f"tool(s) {', '.join(_describe(n) for n in forbidden[:5])} are not allowed for this "
            f"tenant; allowed tools: {', '.join(sorted(policy.allowed_tools)) or 'none'}",
            requested=[_describe(n) for n in forbidden[:5]], allowed=sorted(policy.allowed_tools),
        )
    return tuple(sorted(set(names)))


# --- provider routes ----------------------------------------------------------------------

_PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_MAX_ROUTE = 4
_ROUTE_KEYS: Final = frozenset({"provider", "model", "stream"})


@dataclass(frozen=True)
class RouteTarget:
    """One provider in a tenant's route: which client, which model on it, streamed or not."""

    provider: str
    model: str | None = None  # None: the run's own (tenant-approved) model
    stream: bool = False


def provider_route(routing: Mapping[str, Any]) -> tuple[RouteTarget, ...]:
    """The tenant's ordered provider route from its routing config: primary first, then fallbacks.

    ``routing["providers"]`` is a list of ``{provider, model?, stream?}``; absent means the
    service's configured providers in their default order (an empty tuple). A route model must
    be a canonical id the tenant allows, so a fallback can never reach a model the tenant was
    not given. Anything malformed raises ``ConfigError`` naming the entry.
    """
    raw = routing.get("providers")
    if raw is None:
        return ()
    if type(raw) is not list or not 1 <= len(raw) <= _MAX_ROUTE:
        raise ConfigError(f"routing.providers must be a list of 1-{_MAX_ROUTE} {{provider, model, stream}}")
    allowed = routing.get("allowed_models")
    targets: list[RouteTarget] = []
    for i, entry in enumerate(raw):
        where = f"routing.providers[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a mapping like {{provider: openai, stream: true}}")
        extra = sorted(set(entry) - _ROUTE_KEYS)
        if extra:
            raise ConfigError(f"{where} has unknown keys {extra}; allowed: {sorted(_ROUTE_KEYS)}")
        name, model, stream = entry.get("provider"), entry.get("model"), entry.get("stream", False)
        if type(name) is not str or not _PROVIDER_NAME.fullmatch(name):
            raise ConfigError(f"{where}.provider must be a provider name like 'openai' or 'anthropic'")
        if model is not None and (type(model) is not str or model not in CANONICAL_MODELS):
            raise ConfigError(f"{where}.model {_describe(model)} is not one of {sorted(CANONICAL_MODELS)}")
        if model is not None and isinstance(allowed, list) and model not in allowed:
            raise ConfigError(f"{where}.model {model!r} is not in this tenant's allowed_models")
        if type(stream) is not bool:
            raise ConfigError(f"{where}.stream must be true or false")
        if any(t.provider == name for t in targets):
            raise ConfigError(f"{where}.provider {name!r} appears twice; a route lists each provider once")
        targets.append(RouteTarget(provider=name, model=model, stream=stream))
    return tuple(targets)
