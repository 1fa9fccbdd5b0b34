"""The tools a model may call, their JSON schemas, and which ones are side effects needing approval."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import InvalidRequest
from harness.tools.sandbox import Workspace


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    requires_approval: bool

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


TOOLS: Mapping[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            name="list_files",
            description="List the files in the run's workspace (relative paths).",
            parameters=_schema({"subdir": {"type": "string"}}, []),
            requires_approval=False,
        ),
        ToolSpec(
            name="read_file",
            description="Read a UTF-8 text file from the run's workspace.",
            parameters=_schema({"path": {"type": "string"}}, ["path"]),
            requires_approval=False,
        ),
        ToolSpec(
            name="write_artifact",
            description="Write a text artifact for the user. Needs human approval.",
            parameters=_schema(
                {"path": {"type": "string"}, "content": {"type": "string"}}, ["path", "content"]
            ),
            requires_approval=True,
        ),
    )
}


def check_args(spec: ToolSpec, args: Any) -> dict[str, Any]:
    """Validate model-supplied args against the tool's schema (types, required, no extras)."""
    if not isinstance(args, dict):
        raise InvalidRequest(f"{spec.name}: arguments must be a JSON object")
    props: dict[str, Any] = spec.parameters["properties"]
    unknown = sorted(set(args) - set(props))
    if unknown:
        raise InvalidRequest(f"{spec.name}: unknown argument(s) {', '.join(unknown)}")
    for name in spec.parameters["required"]:
        if name not in args:
            raise InvalidRequest(f"{spec.name}: missing argument {name!r}")
    for name, value in args.items():
        if not isinstance(value, str):
            raise InvalidRequest(f"{spec.name}: argument {name!r} must be a string")
    return dict(args)


def run_read_only(workspace: Workspace, name: str, args: dict[str, Any], *, max_chars: int) -> str:
    """Execute a tool with no side effects; raises SandboxViolation for escapes."""
    if name == "list_files":
        files = workspace.list_files(args.get("subdir", "."))
        return "\n".join(files) if files else "(no files)"
    if name == "read_file":
        return workspace.read_text(args["path"], max_bytes=max_chars)
    raise InvalidRequest(f"{name} is not a read-only tool")
