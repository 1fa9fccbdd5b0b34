"""The provider simulator's script file: which answer, fault or delay each request gets.

A script is YAML or JSON::

    format_version: 1
    created: 1767225600               # the `created` of every response (no wall clock)
    conversations:                    # the first rule whose `match` matches wins
      - name: quarterly
        match: {user_contains: "quarterly report", model: sim-gpt-small}
        turns:                        # turn index = assistant messages already in the request
          - tool_calls: [{name: list_files, arguments: {}}]
          - fault: {status: 503, times: 2, retry_after: 1}
            content: "Done."
    default:                          # used when no rule matches (optional)
      turns:
        - content: "Hello from the simulator."

Every model forbids unknown keys, so a typo fails loudly with the file and field named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from replay.errors import ScenarioError

SIM_SCRIPT_FORMAT_VERSION = 1
DEFAULT_CREATED = 1767225600  # 2026-01-01T00:00:00Z


class SimScriptError(ScenarioError, ValueError):
    """A script file could not be read or is invalid; ``problems`` lists ``(field, message)``.

    Still a ``ValueError``: ``replay.scenario.load_scenario`` catches it as one.
    """

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"{source}: {field}: {message}" for field, message in self.problems]
        super().__init__("invalid provider-sim script\n  " + "\n  ".join(lines))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolCallSpec(_Model):
    """One tool call the assistant makes; a string ``arguments`` is sent verbatim (even invalid)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = Field(default=None, min_length=1)

    def arguments_json(self) -> str:
        """The ``arguments`` string as the wire carries it."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False, separators=(",", ":"))


FaultKind = Literal[
    "status",
    "connect_timeout",
    "read_timeout",
    "reset_before_headers",
    "reset_after_headers",
    "empty_body",
    "malformed",
    "stream_cut",
    "error_event",
    "stall",
]
# Faults that leave no response to record: in a scenario the replay engine injects them at the
# SDK's transport (replay.sim.faults), identically when recording and replaying.
TRANSPORT_FAULTS: frozenset[str] = frozenset(
    {"connect_timeout", "read_timeout", "reset_before_headers", "reset_after_headers", "stall"}
)
# Faults that only make sense inside a streamed answer.
STREAM_FAULTS: frozenset[str] = frozenset({"stream_cut", "error_event", "stall"})


class FaultSpec(_Model):
    """A failure answered instead of the turn, the first ``times`` times (always if omitted).

    ``kind: status`` (the default) answers HTTP ``status`` with an error body (``retry_after``
    and ``retry_after_ms`` add those headers). The other kinds: ``connect_timeout`` (transport
    only), ``read_timeout`` (no answer for ``stall_ms``), ``reset_before_headers`` /
    ``reset_after_headers`` (the connection dropped), ``empty_body`` (200, no bytes),
    ``malformed`` (200, half a JSON body), and for streamed requests ``stream_cut`` (``after``
    events, then a clean end without the final event), ``error_event`` (``after`` events, then an
    error event) and ``stall`` (``after`` events, then silence for ``stall_ms``).
    """

    kind: FaultKind = "status"
    status: int | None = Field(default=None, ge=400, le=599)
    message: str | None = None
    type: str | None = None
    code: str | None = None
    times: int | None = Field(default=None, ge=1)
    retry_after: int | None = Field(default=None, ge=0)
    retry_after_ms: int | None = Field(default=None, ge=0)
    after: int = Field(default=1, ge=0, description="stream events sent before a stream fault")
    stall_ms: int = Field(default=10_000, ge=1, description="read_timeout/stall: silence length")

    @model_validator(mode="after")
    def _status_iff_status_kind(self) -> FaultSpec:
        if self.kind == "status" and self.status is None:
            raise ValueError("a `status` fault needs `status` (e.g. 503), or set `kind`")
        if self.kind != "status" and self.status is not None:
            raise ValueError(f"`status` applies to kind `status` only, not {self.kind!r}")
        return self


class TurnSpec(_Model):
    """What the assistant answers at one turn, and the faults or timing around it."""

    content: str | None = None
    tool_calls: list[ToolCallSpec] = Field(default_factory=list)
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] | None = None
    fault: FaultSpec | None = None
    delay_ms: int = Field(default=0, ge=0)
    chunk_delay_ms: int = Field(default=0, ge=0)
    fail_mid_stream_after: int | None = Field(default=None, ge=0)
    malformed: bool = False

    @model_validator(mode="after")
    def _answers_something(self) -> TurnSpec:
        always_faults = self.fault is not None and self.fault.times is None
        if self.content is None and not self.tool_calls and not always_faults:
            raise ValueError(
                "a turn needs `content` or `tool_calls` (or a `fault` without `times`)"
            )
        return self

    def resolved_finish_reason(self) -> str:
        """The explicit ``finish_reason``, else ``tool_calls`` if it calls tools, else ``stop``."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


class MatchSpec(_Model):
    """Selects a conversation; every given criterion must hold."""

    user_contains: str | None = Field(default=None, min_length=1)
    system_contains: str | None = Field(default=None, min_length=1)
    model: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _has_a_criterion(self) -> MatchSpec:
        if self.user_contains is None and self.system_contains is None and self.model is None:
            raise ValueError(
                "a match needs user_contains, system_contains or model; "
                "use `default` for a catch-all"
            )
        return self

    def matches(self, *, model: str, first_user: str, first_system: str) -> bool:
        """Whether a request with this model and first user/system text is selected."""
        return (
            (self.model is None or self.model == model)
            and (self.user_contains is None or self.user_contains in first_user)
            and (self.system_contains is None or self.system_contains in first_system)
        )


class DefaultConversation(_Model):
    """The conversation for requests no rule matches."""

    turns: list[TurnSpec] = Field(min_length=1)


class ConversationSpec(DefaultConversation):
    """A scripted conversation chosen by ``match``."""

    name: str | None = Field(default=None, min_length=1)
    match: MatchSpec


class SimScript(_Model):
    """A whole script; ``source`` names the file it came from (for error messages)."""

    format_version: Literal[1]
    created: int = Field(default=DEFAULT_CREATED, ge=0)
    conversations: list[ConversationSpec] = Field(default_factory=list)
    default: DefaultConversation | None = None

    _source: str = PrivateAttr(default="<in-memory script>")

    @model_validator(mode="after")
    def _not_empty(self) -> SimScript:
        if not self.conversations and self.default is None:
            raise ValueError("a script needs `conversations`, a `default`, or both")
        names = [c.name for c in self.conversations if c.name is not None]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"conversation names must be unique; repeated: {duplicates}")
        return self

    @property
    def source(self) -> str:
        """The file this script was loaded from, or ``<in-memory script>``."""
        return self._source

    def conversation_label(self, index: int | None) -> str:
        """A human name for conversation ``index`` (``None`` is the default conversation)."""
        if index is None:
            return "default"
        name = self.conversations[index].name
        return name if name is not None else f"conversations[{index}]"


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "(top level)"


def parse_script(data: object, *, source: str = "<in-memory script>") -> SimScript:
    """Validate already-parsed script data; errors name ``source`` and the field."""
    if not isinstance(data, Mapping):
        raise SimScriptError(source, [("(top level)", "expected a mapping of script fields")])
    version = data.get("format_version")
    if version is None:
        raise SimScriptError(
            source,
            [("format_version", f"missing; add `format_version: {SIM_SCRIPT_FORMAT_VERSION}`")],
        )
    if version != SIM_SCRIPT_FORMAT_VERSION:
        message = (
            f"this script is format_version {version!r} but provider-sim reads "
            f"format_version {SIM_SCRIPT_FORMAT_VERSION}; rewrite it in format "
            f"{SIM_SCRIPT_FORMAT_VERSION} (see replay/sim_script.py)"
        )
        raise SimScriptError(source, [("format_version", message)])
    try:
        script = SimScript.model_validate(data)
    except ValidationError as exc:
        problems = [(_field_path(err["loc"]), err["msg"]) for err in exc.errors()]
        raise SimScriptError(source, problems) from exc
    script._source = source
    return script


def load_script(path: Path | str) -> SimScript:
    """Read and validate a ``.yaml``/``.yml``/``.json`` script file."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SimScriptError(source, [("(file)", f"cannot read: {exc}")]) from exc
    try:
        if path.suffix == ".json":
            data: object = json.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise SimScriptError(source, [("(file)", "expected a .yaml, .yml or .json file")])
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SimScriptError(source, [("(syntax)", str(exc))]) from exc
    return parse_script(data, source=source)
