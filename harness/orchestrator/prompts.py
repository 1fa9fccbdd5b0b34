"""Prompt assembly from versioned template files; untrusted parts pass the guard and are delimited."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from harness.errors import InjectionBlocked
from harness.orchestrator.guard import (
    GuardAction,
    GuardVerdict,
    UntrustedSource,
    delimit,
    inspect_untrusted,
    sanitise,
)
from harness.retrieval import RetrievedDocument

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "prompts"
SYSTEM_TEMPLATE = "system.v1"
TASK_TEMPLATE = "task.v1"
TEMPLATE_NAMES = (SYSTEM_TEMPLATE, TASK_TEMPLATE)

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    undefined=StrictUndefined,
    autoescape=False,  # noqa: S701 - prompts are plain text; untrusted parts are escaped by the guard
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class AssembledPrompt:
    messages: list[dict[str, Any]]
    verdicts: tuple[GuardVerdict, ...]


def render(name: str, **values: Any) -> str:
    return _env.get_template(f"{name}.j2").render(**values).strip() + "\n"


def assemble(
    *, tenant_name: str, task: str, documents: list[RetrievedDocument], tools: list[str]
) -> AssembledPrompt:
    """The opening messages of a run: system rules, then the guarded task and documents."""
    task_verdict = inspect_untrusted(task, source=UntrustedSource.USER_TASK)
    if task_verdict.action == GuardAction.BLOCK:  # the API refuses these; this is defence in depth
        raise InjectionBlocked("the task was refused by the injection guard")
    doc_verdicts = [
        inspect_untrusted(doc.body, source=UntrustedSource.RETRIEVED_DOCUMENT) for doc in documents
    ]
    user = render(
        TASK_TEMPLATE,
        task_block=delimit(task_verdict),
        documents=[
            {"title": sanitise(doc.title), "block": delimit(v)}
            for doc, v in zip(documents, doc_verdicts, strict=True)
        ],
        tools=tools,
    )
    system = render(SYSTEM_TEMPLATE, tenant_name=tenant_name)
    return AssembledPrompt(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        verdicts=(task_verdict, *doc_verdicts),
    )


def guard_tool_result(text: str) -> tuple[str, GuardVerdict]:
    """A tool result re-enters the prompt as delimited, neutralised data."""
    verdict = inspect_untrusted(text, source=UntrustedSource.TOOL_RESULT)
    return delimit(verdict), verdict
