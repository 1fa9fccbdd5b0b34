"""``harness-replay check --html``: one offline page a reviewer reads instead of the text report.

A summary table (scenario, result, structural/content counts, signer), then for each changed
scenario: prompts side by side message by message with word-level highlights, the other
differences, the transitions as a timeline, tool calls, audit entries, artifacts and the
approvals history, all in collapsible sections. ``j``/``k`` jump between differences.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from replay.html_page import esc, page, section, side_by_side, table
from replay.results import Difference, ScenarioResult, ScenarioStatus
from replay.store import GoldenStore

__all__ = ["approvals_html", "render_html", "trace_sections"]

_INDEX = re.compile(r"^(\w+)\[(\d+)\]")


def render_html(results: Sequence[ScenarioResult], store: GoldenStore) -> str:
    """The whole report page for ``results`` of a check over ``store``."""
    counts = {status.value: sum(r.status is status for r in results) for status in ScenarioStatus}
    summary_attrs = " ".join(f'data-{k}="{v}"' for k, v in counts.items())
    bar = ", ".join(f'<span data-count="{k}">{v}</span> {k}' for k, v in counts.items() if v)
    rows = []
    for result in results:
        diff = result.diff
        rows.append(
            [
                f'<a href="#s-{esc(result.name)}">{esc(result.name)}</a>'
                if result.status.failed
                else esc(result.name),
                f'<span class="status-{result.status.value}">{result.status.value}</span>',
                str(len(diff.structural)) if diff else "0",
                str(len(diff.content)) if diff else "0",
                esc(_signer(store, result.name)),
            ]
        )
    summary = (
        f'<p id="summary-bar" data-total="{len(results)}" {summary_attrs}>'
        f'<span data-count="total">{len(results)}</span> scenarios: {bar}</p>'
        + table(
            ["scenario", "result", "structural", "content", "signer"],
            rows,
            raw=True,
            attrs=' id="summary"',
        )
    )
    blocks = [_scenario(store, r) for r in results if r.status.failed]
    hint = 'press <b>j</b>/<b>k</b> for the next/previous difference &middot; <span id="nav-pos"></span>'
    return page("harness-replay check", section("Summary", summary) + "".join(blocks), hint=hint)


def _signer(store: GoldenStore, name: str) -> str:
    if name not in store.scenario_names():
        return "-"
    from replay.trust import verify_scenario

    try:
        result = verify_scenario(store, name, allow_demo_key=True)
    except Exception:
        return "-"
    return result.signer or "-"


def _scenario(store: GoldenStore, result: ScenarioResult) -> str:
    parts: list[str] = []
    if result.message:
        parts.append(f'<div class="diff" data-kind="message"><pre>{esc(result.message)}</pre></div>')
    old = _load(store, result.name, new=False)
    new = _load(store, result.name, new=True) if result.new_trace_path else None
    differences = result.diff.differences if result.diff else ()
    parts.append(_prompts(old, new, differences))
    others = [
        d
        for d in differences
        if d.section != "prompts" or (new is None and _INDEX.match(d.path) is None)
    ]
    if others:
        parts.append(
            section(f"Other differences ({len(others)})", "".join(_difference(d) for d in others))
        )
    shown = new or old
    if shown is not None:
        parts.append(trace_sections(shown, differences))
    if result.name in store.scenario_names():
        parts.append(approvals_html(store, result.name))
    title = f"{result.name}: {result.status.value}"
    return section(title, "".join(parts), attrs=f' id="s-{esc(result.name)}" class="scenario"')


def _load(store: GoldenStore, name: str, *, new: bool) -> dict[str, Any] | None:
    if name not in store.scenario_names():
        return None
    paths = store.paths(name)
    path = paths.trace_new if new else paths.trace
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _prompts(
    old: dict[str, Any] | None, new: dict[str, Any] | None, differences: Sequence[Difference]
) -> str:
    prompt_diffs = [d for d in differences if d.section == "prompts"]
    if not prompt_diffs:
        return ""
    if old is None or new is None:  # no new trace on disk (CI): the differences are all we have
        return section(
            f"Prompts ({len(prompt_diffs)} differences)", "".join(_difference(d) for d in prompt_diffs)
        )
    body: list[str] = []
    old_calls, new_calls = old.get("prompts", []), new.get("prompts", [])
    for call in range(max(len(old_calls), len(new_calls))):
        before = old_calls[call] if call < len(old_calls) else {}
        after = new_calls[call] if call < len(new_calls) else {}
        old_messages, new_messages = before.get("messages", []), after.get("messages", [])
        rows: list[str] = []
        same = 0
        for index in range(max(len(old_messages), len(new_messages))):
            a = old_messages[index] if index < len(old_messages) else None
            b = new_messages[index] if index < len(new_messages) else None
            if a == b:
                same += 1
                continue
            role = (b or a or {}).get("role", "?")
            rows.append(
                f'<div class="diff" data-kind="prompt"><b>call {call} message {index}</b> '
                f'<span class="muted">({esc(role)})</span>'
                + side_by_side(_message_text(a), _message_text(b))
                + "</div>"
            )
        if rows or before.get("tools") != after.get("tools"):
            if before.get("tools") != after.get("tools"):
                rows.append(
                    '<div class="diff" data-kind="tools"><b>tools offered</b>'
                    + side_by_side(before.get("tools"), after.get("tools"))
                    + "</div>"
                )
            note = f'<p class="muted">{same} unchanged message(s)</p>' if same else ""
            body.append(section(f"model call {call}", note + "".join(rows)))
    return section(
        "Prompts, message by message", "".join(body) or '<p class="muted">no message changed</p>'
    )


def _message_text(message: dict[str, Any] | None) -> str | None:
    if message is None:
        return None
    content = message.get("content")
    extra = {k: v for k, v in message.items() if k not in {"content", "role"}}
    text = content if isinstance(content, str) else json.dumps(content, indent=2, sort_keys=True)
    return text + (("\n" + json.dumps(extra, indent=2, sort_keys=True)) if extra else "")


def _difference(d: Difference) -> str:
    old = None if d.change == "added" else d.old
    new = None if d.change == "removed" else d.new
    return (
        f'<div class="diff" data-kind="{esc(d.section)}"><code>{esc(d.path)}</code> '
        f'<span class="badge {d.klass.value}">{d.klass.value}</span> '
        f'<span class="muted">{esc(d.change)}</span>'
        + side_by_side(old, new)
        + "</div>"
    )


def _changed_indices(differences: Sequence[Difference], name: str) -> set[int]:
    found: set[int] = set()
    for d in differences:
        match = _INDEX.match(d.path)
        if match and match.group(1) == name:
            found.add(int(match.group(2)))
    return found


def trace_sections(trace: dict[str, Any], differences: Sequence[Difference] = ()) -> str:
    """Transitions timeline, tool calls, audit entries and artifacts of one trace."""
    changed = _changed_indices(differences, "transitions")
    items = "".join(
        f'<li class="{"changed" if i in changed else ""}">'
        f'<b>{esc(t.get("from"))} &rarr; {esc(t.get("to"))}</b> '
        f'<span class="muted">{esc(t.get("at"))} &middot; {esc(t.get("run"))} '
        f"#{esc(str(t.get('seq')))}</span>"
        f"<br>{esc(t.get('reason'))}</li>"
        for i, t in enumerate(trace.get("transitions", []))
    )
    out = [section("Transitions", f'<ol class="timeline">{items}</ol>')]
    tools = [
        [
            str(c.get("seq")),
            str(c.get("name")),
            json.dumps(c.get("args"), sort_keys=True),
            str(c.get("outcome")),
        ]
        for c in trace.get("tool_calls", [])
    ]
    out.append(section(f"Tool calls ({len(tools)})", table(["seq", "tool", "args", "outcome"], tools)))
    audit = [
        [
            str(e.get("seq")),
            str(e.get("at")),
            str(e.get("actor")),
            str(e.get("action")),
            str(e.get("target")),
        ]
        for e in trace.get("audit", [])
    ]
    out.append(
        section(
            f"Audit entries ({len(audit)})",
            table(["seq", "at", "actor", "action", "target"], audit),
            open_=False,
        )
    )
    artifacts = "".join(
        f'<h4>{esc(a.get("path"))} <span class="muted">{esc(str(a.get("size")))} bytes</span></h4>'
        f"<pre>{esc(a.get('content'))}</pre>"
        for a in trace.get("artifacts", [])
    )
    out.append(
        section(
            f"Artifacts ({len(trace.get('artifacts', []))})", artifacts or '<p class="muted">none</p>'
        )
    )
    return "".join(out)


def approvals_html(store: GoldenStore, name: str) -> str:
    """The approvals history of ``name`` as a table (newest last)."""
    path = store.paths(name).approvals
    rows = []
    for line in path.read_bytes().splitlines() if path.exists() else []:
        try:
            a = json.loads(line)
        except ValueError:
            rows.append(["?", "unreadable line", "", "", ""])
            continue
        rows.append(
            [
                str(a.get("counter")),
                str(a.get("approver")),
                str(a.get("at")),
                str(a.get("reason")),
                str(a.get("keyid")),
            ]
        )
    return section(
        f"Approvals ({len(rows)})", table(["#", "approver", "at", "reason", "key"], rows), open_=False
    )
