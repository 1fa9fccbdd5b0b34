"""`harness-replay show`: a golden as a timeline in the terminal (rich) and as a page with an SVG diagram."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from replay.show import render_show_html, render_show_terminal, state_diagram_svg
from replay.store import GoldenStore

pytestmark = [pytest.mark.tier0]

ROOT = Path(__file__).resolve().parents[2]
NAME = "happy_path_with_approval"


@pytest.fixture
def store(tmp_path: Path) -> GoldenStore:
    shutil.copytree(ROOT / "goldens" / NAME, tmp_path / "goldens" / NAME)
    return GoldenStore(tmp_path)


def test_terminal_timeline_has_every_part_in_order(store: GoldenStore) -> None:
    text = render_show_terminal(store, NAME, color=False)
    order = [
        "API calls",
        "Transitions",
        "Model calls",
        "Tool calls",
        "Approvals in the run",
        "artifact report.md",
        "Golden approvals",
    ]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)
    assert "AWAITING_APPROVAL" in text and "write_artifact" in text and "Total: 200" in text
    assert "\x1b[" not in text


def test_golden_text_is_never_rich_markup(store: GoldenStore) -> None:
    trace_path = store.paths(NAME).trace
    trace = json.loads(trace_path.read_text())
    trace["transitions"][0]["reason"] = "[red]not markup[/red]"
    trace_path.write_text(json.dumps(trace))
    assert "[red]not markup[/red]" in render_show_terminal(store, NAME, color=True)


def test_state_diagram_is_inline_svg_with_every_state() -> None:
    transitions = [
        {"from": "PENDING", "to": "RUNNING", "seq": 0},
        {"from": "RUNNING", "to": "AWAITING_APPROVAL", "seq": 1},
        {"from": "AWAITING_APPROVAL", "to": "RUNNING", "seq": 2},
        {"from": "RUNNING", "to": "<b>X</b>", "seq": 3},
    ]
    svg = state_diagram_svg(transitions)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('class="state"') == 4
    assert "&lt;b&gt;X&lt;/b&gt;" in svg and "<b>X</b>" not in svg
    assert svg.count('marker-end="url(#arrow)"') == 4
    label_ys = [float(y) for y in re.findall(r'<text x="[^"]+" y="([^"]+)" text-anchor="middle" fill', svg)]
    assert label_ys and all(0 < y < 260 for y in label_ys)


def test_show_page_is_self_contained(store: GoldenStore) -> None:
    page = render_show_html(store, NAME)
    assert "<svg" in page and "default-src 'none'" in page
    assert "https://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    approvals = len(store.paths(NAME).approvals.read_bytes().splitlines())
    assert approvals >= 1
    assert f"Approvals ({approvals})" in page
