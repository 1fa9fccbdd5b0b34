"""Render scenario results for people (terminal, PR comment) and machines (JUnit XML, JSON)."""

from __future__ import annotations

import html
import json
import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from typing import Any, Final

from harness.canonical import dumps_canonical
from replay._report_overview import (
    ChangeGroup,
    fold_knock_on,
    group_of,
    had_cassette_miss,
    highlight_pairs,
    next_steps,
    overview,
    shared_changes,
)
from replay.results import (
    DiffClass,
    Difference,
    ScenarioResult,
    ScenarioStatus,
)

__all__ = [
    "REPORT_FORMAT_VERSION",
    "render_json",
    "render_junit_xml",
    "render_markdown",
    "render_text",
    "summary_line",
]

REPORT_FORMAT_VERSION: Final = 1
REVIEW_HINT: Final = "review with: harness-replay review"
NONDETERMINISM_HINT: Final = (
    "nondeterministic: repeat runs disagree at the paths shown; look for time, ids or "
    "randomness that bypass the harness clock, id and seed seams"
)

_VALUE_WIDTH: Final = 60
_TEXT_DIFF_LINES: Final = 16
_CLASS_ORDER: Final = (DiffClass.STRUCTURAL, DiffClass.CONTENT)

_RESET: Final = "\x1b[0m"
_BOLD: Final = "\x1b[1m"
_RED: Final = "\x1b[31m"
_GREEN: Final = "\x1b[32m"
_YELLOW: Final = "\x1b[33m"
_CYAN: Final = "\x1b[36m"

# XML 1.0 cannot carry most C0 controls (not even escaped) nor surrogates / U+FFFE-FFFF.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_WORD_REMOVED = re.compile(r"\[-(.*?)-\]", re.DOTALL)
_WORD_ADDED = re.compile(r"\{\+(.*?)\+\}", re.DOTALL)


def render_text(
    results: Sequence[ScenarioResult],
    *,
    color: bool = False,
    max_differences_per_scenario: int = 20,
) -> str:
    """The terminal report: a summary line, a block per scenario needing attention, hints.

    With more than one failing scenario, the first screen is an overview: one row per
    scenario (status, sections), each change shared by several scenarios shown once, and
    the command to run next; the per-scenario details follow.
    """
    paint = _Painter(enabled=color)
    lines = [summary_line(results)]
    failing = [r for r in results if r.status.failed]
    seen_miss_diffs: dict[tuple[str, ...], str] = {}
    groups = shared_changes(failing) if len(failing) > 1 else []
    if len(failing) > 1:
        lines += ["", *overview(results, groups)]
        for group in groups:
            lines += ["", *_group_lines(group, paint)]
        lines += ["", *next_steps(results), "", paint("details", _BOLD)]
    for result in results:
        if result.status is ScenarioStatus.PASSED:
            continue
        lines.append("")
        lines.extend(_scenario_block(result, paint, max_differences_per_scenario, groups, seen_miss_diffs))
    hints = _hints(results)
    if hints:
        lines.append("")
        lines.extend(hints)
    return "\n".join(lines) + "\n"


def _group_lines(group: ChangeGroup, paint: _Painter) -> list[str]:
    scenarios = group.scenarios
    shown = ", ".join(scenarios[:6]) + (f" and {len(scenarios) - 6} more" if len(scenarios) > 6 else "")
    places = len(group.places)
    lines = [
        f"{paint(f'#{group.number}', _BOLD)} the same change in {len(scenarios)} scenarios "
        f"({places} place{'s' if places != 1 else ''} in {group.sample.section}):",
        *textwrap.wrap(shown, width=100, initial_indent="    ", subsequent_indent="    "),
    ]
    sample = group.sample
    lines += [
        line.replace(f"    {sample.path}", f"    {group.path_pattern}", 1)
        for line in _difference_lines(sample, paint)
    ]
    return lines


def render_markdown(results: Sequence[ScenarioResult]) -> str:
    """A PR comment: summary table, then a collapsible block per failing scenario."""
    lines = [
        f"### harness-replay: {summary_line(results)}",
        "",
        "| scenario | status | structural | content | sections |",
        "|---|---|---:|---:|---|",
    ]
    for result in results:
        structural, content = _counts(result)
        sections = ", ".join(result.diff.sections) if result.diff else ""
        lines.append(
            f"| {_md_cell(result.name)} | {_STATUS_BADGE[result.status]} {result.status.value} "
            f"| {structural} | {content} | {_md_cell(sections)} |"
        )
    for result in results:
        if not result.status.failed:
            continue
        body = "\n".join(_scenario_block(result, _Painter(enabled=False), 50))
        fence = "`" * max(3, _longest_backtick_run(body) + 1)
        lines += [
            "",
            "<details>",
            f"<summary><b>{html.escape(result.name)}</b>: {_headline(result)}</summary>",
            "",
            f"{fence}text",
            body,
            fence,
            "",
            "</details>",
        ]
    hints = _hints(results)
    if hints:
        lines += ["", *(f"> {hint}" for hint in hints)]
    return "\n".join(lines) + "\n"


def render_junit_xml(results: Sequence[ScenarioResult]) -> str:
    """JUnit XML for CI: one testsuite ``harness-replay``, one testcase per scenario."""
    suite = ET.Element(
        "testsuite",
        {
            "name": "harness-replay",
            "tests": str(len(results)),
            "failures": str(sum(r.status in _JUNIT_FAILURES for r in results)),
            "errors": str(sum(r.status is ScenarioStatus.ERROR for r in results)),
            "skipped": "0",
        },
    )
    for result in results:
        case = ET.SubElement(
            suite, "testcase", {"classname": "harness-replay", "name": _xml_safe(result.name)}
        )
        if result.status is ScenarioStatus.PASSED:
            continue
        block = "\n".join(_scenario_block(result, _Painter(enabled=False), 50))
        if result.status is ScenarioStatus.UPDATED:
            ET.SubElement(case, "system-out").text = _xml_safe(block)
            continue
        tag = "error" if result.status is ScenarioStatus.ERROR else "failure"
        element = ET.SubElement(
            case,
            tag,
            {"message": _xml_safe(_headline(result)), "type": result.status.value},
        )
        element.text = _xml_safe(block)
    ET.indent(suite)
    body = ET.tostring(suite, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def render_json(results: Sequence[ScenarioResult]) -> str:
    """Canonical JSON: a summary, then each scenario's status and differences."""
    counts = {status.value: 0 for status in ScenarioStatus}
    for result in results:
        counts[result.status.value] += 1
    document: dict[str, Any] = {
        "format_version": REPORT_FORMAT_VERSION,
        "ok": not any(r.status.failed for r in results),
        "summary": {"total": len(results), **counts},
        "scenarios": [r.to_json() for r in results],
    }
    return dumps_canonical(document)


def summary_line(results: Sequence[ScenarioResult]) -> str:
    """``3 scenarios: 2 passed, 1 regressed``."""
    noun = "scenario" if len(results) == 1 else "scenarios"
    parts = [
        f"{count} {status.value}"
        for status in ScenarioStatus
        if (count := sum(r.status is status for r in results))
    ]
    return f"{len(results)} {noun}: {', '.join(parts)}" if parts else f"0 {noun}"


# --- the per-scenario block, shared by every human-readable format ------------------------


class _Painter:
    """ANSI colours when enabled, plain text otherwise."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if self.enabled and text else text

    def text_diff_line(self, line: str, *, unified: bool) -> str:
        if not self.enabled:
            return line
        if unified:
            code = next((c for prefix, c in _UNIFIED_COLORS if line.startswith(prefix)), "")
            return self(line, code) if code else line
        line = _WORD_REMOVED.sub(lambda m: self(f"[-{m.group(1)}-]", _RED), line)
        return _WORD_ADDED.sub(lambda m: self(f"{{+{m.group(1)}+}}", _GREEN), line)


_UNIFIED_COLORS: Final = (("+++", _BOLD), ("---", _BOLD), ("@@", _CYAN), ("+", _GREEN), ("-", _RED))
_STATUS_COLOR: Final = {
    ScenarioStatus.PASSED: _GREEN,
    ScenarioStatus.REGRESSED: _RED,
    ScenarioStatus.NONDETERMINISTIC: _YELLOW,
    ScenarioStatus.ERROR: _RED,
    ScenarioStatus.UPDATED: _CYAN,
}
_STATUS_BADGE: Final = {
    ScenarioStatus.PASSED: "✅",
    ScenarioStatus.REGRESSED: "❌",
    ScenarioStatus.NONDETERMINISTIC: "⚠️",
    ScenarioStatus.ERROR: "💥",
    ScenarioStatus.UPDATED: "📝",
}
_JUNIT_FAILURES: Final = frozenset({ScenarioStatus.REGRESSED, ScenarioStatus.NONDETERMINISTIC})


def _scenario_block(
    result: ScenarioResult,
    paint: _Painter,
    max_differences: int,
    groups: Sequence[ChangeGroup] = (),
    seen_miss_diffs: dict[tuple[str, ...], str] | None = None,
) -> list[str]:
    status = paint(result.status.value.upper(), _STATUS_COLOR[result.status])
    lines = [f"{paint(result.name, _BOLD)}  {status}{_counts_suffix(result)}"]
    message = result.message.replace("record <scenario>", f"record {result.name}")
    message_lines = highlight_pairs([f"  {line}" for line in message.splitlines()], indent="  ")
    if seen_miss_diffs is not None:
        message_lines = _fold_repeated_miss_diff(message_lines, result.name, seen_miss_diffs)
    for line in message_lines:
        lines.append(paint.text_diff_line(line, unified=False) if line.startswith("  ~") else line)
    if result.status is ScenarioStatus.NONDETERMINISTIC:
        lines.append("  paths where repeat runs disagree (old: first run, new: a repeat):")
    differences, knock_on = fold_knock_on(_ordered(result))
    shown = differences[:max_differences]
    section_group: tuple[DiffClass, str] | None = None
    for difference in shown:
        if (difference.klass, difference.section) != section_group:
            section_group = (difference.klass, difference.section)
            lines.append(f"  {paint(difference.klass.value.upper(), _BOLD)} in {difference.section}")
        shared = group_of(groups, result.name, difference)
        if shared is not None:
            lines.append(f"    {difference.path}: the same change as #{shared.number} above")
        else:
            lines.extend(_difference_lines(difference, paint))
    if knock_on is not None:
        lines.append(knock_on.line())
    if len(differences) > len(shown):
        hidden = len(differences) - len(shown)
        lines.append(f"  … {hidden} more difference{'s' if hidden != 1 else ''} not shown")
    if result.new_trace_path:
        lines.append(f"  new trace: {result.new_trace_path}")
    if result.repeat_paths:
        lines.append(f"  repeat traces: {', '.join(result.repeat_paths)}")
    return lines


_MISS_DIFF_START: Final = "  diff against the nearest recorded request:"


def _fold_repeated_miss_diff(lines: list[str], name: str, seen: dict[tuple[str, ...], str]) -> list[str]:
    """A nearest-request diff already shown for another scenario becomes one line naming it."""
    if _MISS_DIFF_START not in lines:
        return lines
    start = lines.index(_MISS_DIFF_START)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ") or
                lines[i].startswith("  (")), len(lines))  # fmt: skip
    region = tuple(lines[start:end])
    if region not in seen:
        seen[region] = name
        return lines
    return [*lines[:start], f"  (the same nearest-request diff as {seen[region]}, above)", *lines[end:]]


def _ordered(result: ScenarioResult) -> list[Difference]:
    """Structural first, then content; inside a class, grouped by section in trace order."""
    if result.diff is None:
        return []
    ordered: list[Difference] = []
    for klass in _CLASS_ORDER:
        of_class = [d for d in result.diff.differences if d.klass is klass]
        sections = list(dict.fromkeys(d.section for d in of_class))
        for section in sections:
            ordered += [d for d in of_class if d.section == section]
    return ordered


def _difference_lines(difference: Difference, paint: _Painter) -> Iterator[str]:
    path = f"    {difference.path}"
    old = paint(_short(difference.old), _RED)
    new = paint(_short(difference.new), _GREEN)
    if difference.change == "added":
        yield f"{path}: added {new}"
    elif difference.change == "removed":
        yield f"{path}: removed {old}"
    elif difference.text_diff is not None:
        yield f"{path}: changed"
        diff_lines = difference.text_diff.splitlines()
        unified = difference.text_diff.startswith("--- ")
        if unified:  # a changed line pair becomes one line with the changed words marked
            diff_lines = [line for line in highlight_pairs(diff_lines) if not line.startswith(("---", "+++"))]
        for line in diff_lines[:_TEXT_DIFF_LINES]:
            word_marked = not unified or line.startswith("~")
            yield f"      {paint.text_diff_line(line, unified=not word_marked)}"
        if len(diff_lines) > _TEXT_DIFF_LINES:
            yield f"      … {len(diff_lines) - _TEXT_DIFF_LINES} more lines"
    elif difference.change == "type_changed":
        yield f"{path}: type changed {old} → {new}"
    else:
        yield f"{path}: {old} → {new}"


def _short(value: Any) -> str:
    """A value as JSON on one line, cut to a readable width."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def _counts(result: ScenarioResult) -> tuple[int, int]:
    if result.diff is None:
        return 0, 0
    return len(result.diff.structural), len(result.diff.content)


def _counts_suffix(result: ScenarioResult) -> str:
    if result.diff is None or result.diff.equal:
        return ""
    structural, content = _counts(result)
    return f"  ({structural} structural, {content} content)"


def _headline(result: ScenarioResult) -> str:
    """One line for a summary or an XML attribute."""
    if result.diff is not None and not result.diff.equal:
        structural, content = _counts(result)
        return f"{result.status.value} ({structural} structural, {content} content)"
    first_line = result.message.splitlines()[0] if result.message else ""
    return f"{result.status.value}: {first_line}" if first_line else result.status.value


def _hints(results: Sequence[ScenarioResult]) -> list[str]:
    statuses = {r.status for r in results}
    hints = []
    missed = [r.name for r in results if r.status.failed and had_cassette_miss(r)]
    if missed:  # the recorded answers no longer fit the requests: review cannot fix that
        names = " ".join(missed) if len(missed) <= 4 else "--all"
        hints.append(
            f"re-record (the cassettes have no answers for the new requests): harness-replay record {names}"
        )
    if any(r.status is ScenarioStatus.REGRESSED and not had_cassette_miss(r) for r in results):
        hints.append(REVIEW_HINT)
    if ScenarioStatus.NONDETERMINISTIC in statuses:
        hints.append(NONDETERMINISM_HINT)
    return hints


def _md_cell(text: str) -> str:
    return html.escape(text).replace("|", "\\|").replace("\n", " ")


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def _xml_safe(text: str) -> str:
    """Swap what XML 1.0 cannot carry for a visible ``\\uXXXX``; ElementTree escapes the rest."""
    return _XML_ILLEGAL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
