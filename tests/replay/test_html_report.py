"""The HTML review page: rendered offline, escaped, and driven in a real Chromium (Playwright)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from replay.html_page import word_diff
from replay.pr_summary import MAX_COMMENT_CHARS, cap_markdown
from replay.report import render_markdown
from replay.results import DiffClass, Difference, ScenarioResult, ScenarioStatus, TraceDiff
from tests.support.goldens import scratch_project

pytestmark = [pytest.mark.tier1]

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "harness-replay"
ARTIFACTS = Path(os.environ.get("HARNESS_TEST_ARTIFACTS", ROOT / ".test-artifacts"))
NAME = "rejection"


def test_word_diff_marks_only_the_changed_words_and_escapes() -> None:
    old, new = word_diff("the <b>cat</b> sat", "the <b>dog</b> sat")
    assert old == "the &lt;b&gt;<del>cat</del>&lt;/b&gt; sat"
    assert new == "the &lt;b&gt;<ins>dog</ins>&lt;/b&gt; sat"


def test_markdown_summary_stays_under_the_comment_limit() -> None:
    long_text = "x" * 4000
    results = [
        ScenarioResult(
            f"scenario_{i}",
            ScenarioStatus.REGRESSED,
            diff=TraceDiff(
                (
                    Difference(
                        "prompts",
                        "prompts[0].messages[0].content",
                        "changed",
                        DiffClass.CONTENT,
                        long_text,
                        long_text + "y",
                    ),
                )
            ),
        )
        for i in range(400)
    ]
    full = render_markdown(results)
    assert len(full) > MAX_COMMENT_CHARS  # the case being tested
    capped = cap_markdown(full, results)
    assert len(capped) < MAX_COMMENT_CHARS
    assert "| scenario_0 | regressed | 0 | 1 |" in capped
    assert "over the 65,000-character comment limit" in capped
    small = render_markdown(results[:1])
    assert cap_markdown(small, results[:1]) == small


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A check over two goldens, one with a changed approval reason, written as HTML and JSON."""
    root = scratch_project(tmp_path_factory.mktemp("project"), NAME, "bad_requests")
    scenario = root / "goldens" / NAME / "scenario.yaml"
    text = scenario.read_text()
    # A changed task (the prompt differs word by word) and a changed approval reason.
    task = 'task: "Draft a <script>alert(1)</script> memo for the board"'
    text = text.replace('task: "Draft a memo"', task)
    scenario.write_text(text.replace('reason: "not appropriate"', 'reason: "off-brand tone"'))
    html_path = root / "report.html"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    done = subprocess.run(
        [str(CLI), "check", "--root", str(root), "--allow-demo-key", "--json", "--html", str(html_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    return html_path, json.loads(done.stdout)


def test_the_page_is_self_contained_and_escapes_golden_text(
    report: tuple[Path, dict[str, object]],
) -> None:
    html_path, _ = report
    page = html_path.read_text()
    assert "default-src 'none'" in page
    for remote in ("http://", "https://", "src=", "<link"):
        assert remote not in page, remote
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    approvals = len((html_path.parent / "goldens" / NAME / "approvals.jsonl").read_bytes().splitlines())
    assert approvals >= 1
    assert f'id="s-{NAME}"' in page and f"Approvals ({approvals})" in page and "Transitions" in page


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
    return path


def test_the_page_in_a_real_browser(report: tuple[Path, dict[str, object]]) -> None:
    from playwright.sync_api import sync_playwright

    html_path, document = report
    summary = document["summary"]
    assert isinstance(summary, dict)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html_path.as_uri())
            page.wait_for_selector("#summary")
            bar = page.locator("#summary-bar")
            for status in ("total", "passed", "regressed", "error"):
                assert bar.get_attribute(f"data-{status}") == str(summary[status]), status
            assert page.locator("#summary tbody tr").count() == summary["total"]
            first = page.locator(".diff").first
            page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            assert not _in_view(page, first)
            page.keyboard.press("j")
            page.wait_for_function("document.querySelector('.diff.current') !== null")
            assert _in_view(page, first)
            assert "current" in (first.get_attribute("class") or "")
            page.keyboard.press("j")
            page.keyboard.press("k")
            assert "current" in (first.get_attribute("class") or "")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "replay-report.png"
            page.screenshot(path=str(shot), full_page=False)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
    assert errors == []


def _in_view(page: object, locator: object) -> bool:
    box = locator.bounding_box()  # type: ignore[attr-defined]
    height = page.evaluate("window.innerHeight")  # type: ignore[attr-defined]
    return box is not None and 0 <= box["y"] < height


def test_the_show_page_in_a_real_browser(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    out = tmp_path / "show.html"
    done = subprocess.run(
        [str(CLI), "show", "happy_path_with_approval", "--root", str(ROOT), "--html", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(out.as_uri())
            svg = page.locator("svg[aria-label='run state diagram']")
            svg.wait_for()
            box = svg.bounding_box()
            assert box is not None and box["width"] > 500 and box["height"] > 200
            assert (
                page.locator("svg g.state").count() == 5
            )  # PENDING RUNNING AWAITING_APPROVAL APPROVED SUCCEEDED
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "replay-show.png"))
        finally:
            browser.close()
    assert errors == []
