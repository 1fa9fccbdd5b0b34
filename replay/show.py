"""``harness-replay show NAME``: one golden as a readable timeline, in the terminal or as a page.

API call -> transitions -> model calls -> tool calls -> approvals -> artifacts, then the
approvals history. The page adds the run's state diagram as inline SVG.
"""

from __future__ import annotations

import html
import json
from typing import Any

from rich.text import Text

from replay.errors import GoldenMissing
from replay.html_page import esc, page, section, table
from replay.html_report import approvals_html, trace_sections
from replay.store import GoldenStore

__all__ = ["load_trace", "render_show_html", "render_show_terminal", "state_diagram_svg"]


def load_trace(store: GoldenStore, name: str) -> dict[str, Any]:
    """The golden trace of ``name`` (``GoldenMissing`` when it was never recorded)."""
    data = store.read_trace_bytes(name)
    if data is None:
        raise GoldenMissing(
            f"scenario {name!r} has no trace.json; record it with `harness-replay record {name}`"
        )
    trace: dict[str, Any] = json.loads(data)
    return trace


def render_show_terminal(store: GoldenStore, name: str, *, color: bool, width: int = 120) -> str:
    """The timeline as text (rich tables; ANSI colours when ``color``)."""
    from rich.console import Console
    from rich.table import Table

    trace = load_trace(store, name)
    console = Console(
        record=True, width=width, force_terminal=color, color_system="standard" if color else None
    )
    console.print(
        Text(name, style="bold") + Text(f": {trace.get('scenario', {}).get('description', '')}")
    )
    api = Table("#", "as", "request", "status", title="API calls", title_justify="left")
    for step in trace.get("api", []):
        request, response = step.get("request", {}), step.get("response", {})
        api.add_row(
            _t(step.get("step")),
            _t(step.get("as")),
            _t(f"{request.get('method')} {request.get('path')}"),
            _t(response.get("status")),
        )
    console.print(api)
    transitions = Table("run", "seq", "from", "to", "reason", title="Transitions", title_justify="left")
    for t in trace.get("transitions", []):
        transitions.add_row(
            _t(t.get("run")),
            _t(t.get("seq")),
            _t(t.get("from")),
            Text(str(t.get("to")), style="bold"),
            _t(t.get("reason")),
        )
    console.print(transitions)
    calls = Table("call", "model", "messages", "last message", title="Model calls", title_justify="left")
    for prompt in trace.get("prompts", []):
        messages = prompt.get("messages", [])
        last = _t(str(messages[-1].get("content", ""))[:80] if messages else "")
        calls.add_row(_t(prompt.get("call")), _t(prompt.get("model")), _t(len(messages)), last)
    console.print(calls)
    tools = Table("seq", "tool", "args", "outcome", title="Tool calls", title_justify="left")
    for c in trace.get("tool_calls", []):
        tools.add_row(
            _t(c.get("seq")),
            _t(c.get("name")),
            _t(json.dumps(c.get("args"), sort_keys=True)[:60]),
            _t(c.get("outcome")),
        )
    console.print(tools)
    approvals = Table(
        "action", "decision", "by", "reason", title="Approvals in the run", title_justify="left"
    )
    for a in trace.get("approvals", []):
        approvals.add_row(
            _t(a.get("action")), _t(a.get("decision")), _t(a.get("decided_by")), _t(a.get("reason"))
        )
    console.print(approvals)
    for artifact in trace.get("artifacts", []):
        heading = Text(f"artifact {artifact.get('path')}", style="bold")
        console.print(heading + Text(f" ({artifact.get('size')} bytes)"))
        console.print(str(artifact.get("content", "")), markup=False, highlight=False)
    history = Table("#", "approver", "at", "reason", title="Golden approvals", title_justify="left")
    path = store.paths(name).approvals
    for line in path.read_bytes().splitlines() if path.exists() else []:
        entry = json.loads(line)
        history.add_row(
            _t(entry.get("counter")),
            _t(entry.get("approver")),
            _t(entry.get("at")),
            _t(entry.get("reason")),
        )
    console.print(history)
    return console.export_text(styles=color)


def _t(value: Any) -> Text:
    """A table cell shown literally: golden text never becomes rich markup."""
    return Text(str(value))


def state_diagram_svg(transitions: list[dict[str, Any]]) -> str:
    """States in order of first appearance, left to right; forward edges arc above, back edges below."""
    states: list[str] = []
    for t in transitions:
        for state in (t.get("from"), t.get("to")):
            if isinstance(state, str) and state not in states:
                states.append(state)
    edges: dict[tuple[str, str], list[str]] = {}
    for t in transitions:
        edges.setdefault((str(t.get("from")), str(t.get("to"))), []).append(str(t.get("seq")))
    box_w, gap, top = 150, 50, 110
    width = max(1, len(states)) * (box_w + gap) + gap
    x = {s: gap + i * (box_w + gap) for i, s in enumerate(states)}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="run state diagram" '
        f'width="{width}" height="260" viewBox="0 0 {width} 260" font-family="sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>',
    ]
    for state in states:
        parts.append(
            f'<g class="state"><rect x="{x[state]}" y="{top}" width="{box_w}" height="36" rx="8" '
            f'fill="#ddf4ff" stroke="#0969da"/><text x="{x[state] + box_w / 2}" y="{top + 23}" '
            f'text-anchor="middle">{html.escape(state)}</text></g>'
        )
    for (source, target), seqs in edges.items():
        if source not in x or target not in x:
            continue
        forward = x[target] >= x[source]
        x1, x2 = x[source] + box_w / 2, x[target] + box_w / 2
        y = top if forward else top + 36
        bend = min(90.0, 30 + abs(x2 - x1) / 8)  # the curve peaks at y +- bend: inside the canvas
        lift = -bend if forward else bend
        if source == target:
            x2 = x1 + 20
        label = "#" + ",".join(seqs)
        parts.append(
            f'<path d="M{x1},{y} Q{(x1 + x2) / 2},{y + 2 * lift} {x2},{y}" fill="none" stroke="#57606a" '
            f'marker-end="url(#arrow)"/><text x="{(x1 + x2) / 2}" y="{y + lift - 4}" text-anchor="middle" '
            f'fill="#57606a">{html.escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_show_html(store: GoldenStore, name: str) -> str:
    """The timeline page of one golden, with its state diagram inline."""
    trace = load_trace(store, name)
    api_rows = [
        [
            str(s.get("step")),
            str(s.get("as")),
            f"{s.get('request', {}).get('method')} {s.get('request', {}).get('path')}",
            str(s.get("response", {}).get("status")),
        ]
        for s in trace.get("api", [])
    ]
    prompts = "".join(
        section(
            f"model call {p.get('call')} ({p.get('model')}, {len(p.get('messages', []))} messages)",
            "".join(
                f"<h4>{esc(m.get('role'))}</h4><pre>{esc(m.get('content') or m)}</pre>"
                for m in p.get("messages", [])
            ),
            open_=False,
        )
        for p in trace.get("prompts", [])
    )
    body = (
        f"<p>{esc(trace.get('scenario', {}).get('description', ''))}</p>"
        + section("State diagram", state_diagram_svg(trace.get("transitions", [])))
        + section("API calls", table(["#", "as", "request", "status"], api_rows))
        + section("Model calls", prompts or '<p class="muted">none</p>')
        + trace_sections(trace)
        + approvals_html(store, name)
    )
    return page(f"golden {name}", body)
