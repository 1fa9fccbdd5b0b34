"""Report renderers: terminal text, PR markdown, JUnit XML and JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from harness.canonical import dumps_canonical
from replay.diff import diff_traces
from replay.report import (
    REVIEW_HINT,
    render_json,
    render_junit_xml,
    render_markdown,
    render_text,
)
from replay.results import (
    DiffClass,
    Difference,
    ScenarioResult,
    ScenarioStatus,
    TraceDiff,
)

pytestmark = pytest.mark.tier0

PROMPT = (
    "You are a helpful assistant that writes short, precise reports about the files "
    "in the workspace and never invents facts."
)


def golden() -> dict[str, Any]:
    return {
        "format_version": 1,
        "prompts": [{"call": 0, "messages": [{"role": "system", "content": PROMPT}]}],
        "transitions": [
            {"seq": 0, "from": "PENDING", "to": "RUNNING"},
            {"seq": 1, "from": "RUNNING", "to": "SUCCEEDED"},
        ],
        "audit": [{"seq": i, "action": "run.step", "payload": {"i": i}} for i in range(100)],
    }


def prompt_regression() -> ScenarioResult:
    actual = golden()
    actual["prompts"][0]["messages"][0]["content"] = PROMPT.replace("helpful", "careful")
    return ScenarioResult(
        "happy_path_with_approval",
        ScenarioStatus.REGRESSED,
        diff=diff_traces(golden(), actual),
        new_trace_path="goldens/happy_path_with_approval/trace.json.new",
    )


def mixed_regression() -> ScenarioResult:
    actual = golden()
    actual["prompts"][0]["messages"][0]["content"] = PROMPT.replace("helpful", "careful")
    actual["transitions"][1]["to"] = "FAILED"
    return ScenarioResult("tool_refused", ScenarioStatus.REGRESSED, diff=diff_traces(golden(), actual))


def passed(name: str) -> ScenarioResult:
    return ScenarioResult(name, ScenarioStatus.PASSED, diff=TraceDiff())


def test_summary_line_counts_statuses() -> None:
    results = [passed("a"), prompt_regression(), passed("b")]

    assert render_text(results).splitlines()[0] == "3 scenarios: 2 passed, 1 regressed"


def test_all_passed_is_one_line_without_hints() -> None:
    assert render_text([passed("a")]) == "1 scenario: 1 passed\n"


def test_first_screen_names_scenario_section_and_changed_word() -> None:
    results = [passed(f"scenario_{i}") for i in range(30)] + [prompt_regression()]

    first_screen = "\n".join(render_text(results).splitlines()[:40])

    assert "happy_path_with_approval" in first_screen
    assert "REGRESSED" in first_screen
    assert "prompts" in first_screen
    assert "prompts[0].messages[0].content" in first_screen
    assert "[-helpful-]{+careful+}" in first_screen


def test_structural_differences_come_before_content() -> None:
    text = render_text([mixed_regression()])

    assert text.index("STRUCTURAL in transitions") < text.index("CONTENT in prompts")
    assert 'transitions[1].to: "SUCCEEDED" → "FAILED"' in text
    assert "(1 structural, 1 content)" in text


def test_regression_ends_with_the_review_hint() -> None:
    text = render_text([prompt_regression()])

    assert text.rstrip("\n").splitlines()[-1] == REVIEW_HINT
    assert "new trace: goldens/happy_path_with_approval/trace.json.new" in text


def test_long_values_are_truncated() -> None:
    actual = golden()
    actual["audit"].append({"seq": 100, "payload": {"blob": "x" * 5000}})
    result = ScenarioResult("s", ScenarioStatus.REGRESSED, diff=diff_traces(golden(), actual))

    text = render_text([result])

    assert "audit[100]: added" in text
    assert max(len(line) for line in text.splitlines()) < 120


def test_differences_beyond_the_limit_are_counted_not_shown() -> None:
    actual = golden()
    for entry in actual["audit"]:
        entry["payload"]["i"] = -1
    result = ScenarioResult("s", ScenarioStatus.REGRESSED, diff=diff_traces(golden(), actual))

    text = render_text([result], max_differences_per_scenario=5)

    assert text.count("audit[") == 5
    assert "… 95 more differences not shown" in text


def test_color_is_opt_in() -> None:
    assert "\x1b[" not in render_text([prompt_regression()])
    assert "\x1b[" in render_text([prompt_regression()], color=True)


def test_error_and_nondeterminism_blocks() -> None:
    nondeterministic = ScenarioResult(
        "clocky",
        ScenarioStatus.NONDETERMINISTIC,
        diff=TraceDiff((Difference("audit", "audit[3].at", "changed", DiffClass.CONTENT, "09:00", "09:01"),)),
        repeat_paths=("out/clocky.1.json", "out/clocky.2.json"),
    )
    error = ScenarioResult(
        "miss",
        ScenarioStatus.ERROR,
        message="cassette miss: POST /v1/chat/completions\nnearest recorded: call 0",
    )

    text = render_text([nondeterministic, error])

    assert "clocky  NONDETERMINISTIC" in text
    assert 'audit[3].at: "09:00" → "09:01"' in text
    assert "repeat traces: out/clocky.1.json, out/clocky.2.json" in text
    assert "miss  ERROR" in text
    assert "  nearest recorded: call 0" in text
    assert REVIEW_HINT not in text


def test_junit_xml_parses_and_has_failures() -> None:
    weird = ScenarioResult(
        'bad <name> & "quotes"',
        ScenarioStatus.ERROR,
        message="control \x00\x1b chars and ]]> in the message",
    )
    results = [passed("a"), prompt_regression(), weird]

    suite = ET.fromstring(render_junit_xml(results))

    assert suite.tag == "testsuite"
    assert suite.get("name") == "harness-replay"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["a", "happy_path_with_approval", weird.name]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("type") == "regressed"
    assert "prompts[0].messages[0].content" in (failure.text or "")
    error = cases[2].find("error")
    assert error is not None
    assert "\\u0000" in (error.text or "")
    assert "]]>" in (error.text or "")


def test_markdown_has_a_table_and_collapsible_details() -> None:
    results = [passed("a|b"), mixed_regression()]

    markdown = render_markdown(results)

    assert markdown.startswith("### harness-replay: 2 scenarios: 1 passed, 1 regressed\n")
    assert "| scenario | status | structural | content | sections |" in markdown
    assert "| a\\|b | ✅ passed | 0 | 0 |  |" in markdown
    assert "| tool_refused | ❌ regressed | 1 | 1 | prompts, transitions |" in markdown
    assert markdown.count("<details>") == 1
    assert "<summary><b>tool_refused</b>: regressed (1 structural, 1 content)</summary>" in markdown
    assert "[-helpful-]{+careful+}" in markdown
    assert "harness-replay review" in markdown


def test_markdown_fence_survives_backticks_in_diffs() -> None:
    actual = golden()
    actual["prompts"][0]["messages"][0]["content"] = PROMPT + "\n```\nclosing fence\n"
    result = ScenarioResult("s", ScenarioStatus.REGRESSED, diff=diff_traces(golden(), actual))

    markdown = render_markdown([result])

    assert "````text" in markdown


def test_json_is_canonical_and_round_trips() -> None:
    results = [
        passed("a"),
        mixed_regression(),
        ScenarioResult("u", ScenarioStatus.UPDATED, message="golden written"),
    ]

    rendered = render_json(results)
    document = json.loads(rendered)

    assert rendered == dumps_canonical(document)
    assert document["ok"] is False
    assert document["summary"] == {
        "total": 3,
        "passed": 1,
        "regressed": 1,
        "nondeterministic": 0,
        "error": 0,
        "updated": 1,
    }
    assert [s["status"] for s in document["scenarios"]] == ["passed", "regressed", "updated"]
    assert [ScenarioResult.from_json(s) for s in document["scenarios"]] == results
    differences = document["scenarios"][1]["diff"]["differences"]
    assert {(d["path"], d["class"]) for d in differences} == {
        ("transitions[1].to", "structural"),
        ("prompts[0].messages[0].content", "content"),
    }


# --- the first screen of a many-scenario change -------------------------------------------

MULTILINE = "Rules:\n- be brief\n- When done, answer with a short summary of what you produced.\n- stop"


def multiline_regression(name: str, *, miss: bool = False, calls: int = 2) -> ScenarioResult:
    old = {"format_version": 1, "prompts": [{"messages": [{"content": MULTILINE}]} for _ in range(calls)]}
    new = json.loads(json.dumps(old).replace("a short summary", "a brief summary"))
    message = "2 provider request(s) were not in the cassette; first: ..." if miss else ""
    return ScenarioResult(name, ScenarioStatus.REGRESSED, diff=diff_traces(old, new), message=message)


def test_the_same_change_in_many_scenarios_is_shown_once() -> None:
    results = [multiline_regression(f"scenario_{i}") for i in range(12)] + [passed("ok")]

    text = render_text(results)
    first_screen = "\n".join(text.splitlines()[:30])

    assert "the same change in 12 scenarios (24 places in prompts)" in first_screen
    assert text.count("a [-short-]{+brief+} summary") == 1  # the change, once, words marked
    assert "  12 scenarios REGRESSED: prompts" in first_screen
    assert "scenario_11" in first_screen
    assert "next: if the change is intended, review and accept it: harness-replay review" in first_screen
    assert "prompts[1].messages[0].content: the same change as #1 above" in text
    assert len(text.splitlines()) < 12 * 6 + 25


def test_a_change_in_one_scenario_only_is_not_grouped() -> None:
    other = golden()
    other["transitions"][1]["to"] = "FAILED"
    results = [
        multiline_regression("a"),
        multiline_regression("b"),
        ScenarioResult("c", ScenarioStatus.REGRESSED, diff=diff_traces(golden(), other)),
    ]

    text = render_text(results)

    assert "the same change in 2 scenarios" in text
    assert 'transitions[1].to: "SUCCEEDED" → "FAILED"' in text


def test_a_cassette_miss_says_re_record_never_review() -> None:
    results = [multiline_regression(f"s{i}", miss=True) for i in range(3)]

    text = render_text(results)

    assert "re-record: harness-replay record s0 s1 s2" in text
    assert REVIEW_HINT not in text
    assert "review" not in text.lower().replace("re-record", "")
    single = render_text([multiline_regression("one", miss=True)])
    assert single.rstrip("\n").splitlines()[-1].endswith("harness-replay record one")


def test_knock_on_hash_changes_fold_under_the_payload_change() -> None:
    old = {
        "audit": [
            {"seq": i, "payload": {"r": "x"}, "prev_hash": f"p{i}", "entry_hash": f"h{i}"} for i in range(8)
        ]
    }
    new = json.loads(json.dumps(old))
    new["audit"][3]["payload"]["r"] = "y"
    for i in range(3, 8):
        new["audit"][i]["entry_hash"] = f"H{i}"
        if i > 3:
            new["audit"][i]["prev_hash"] = f"P{i}"
    result = ScenarioResult("s", ScenarioStatus.REGRESSED, diff=diff_traces(old, new))

    text = render_text([result])

    assert 'audit[3].payload.r: "x" → "y"' in text
    assert "audit[3..7]: 9 entry_hash/prev_hash value(s) changed as a consequence" in text
    assert "entry_hash:" not in text and "prev_hash:" not in text


def test_a_hash_change_without_a_payload_change_stays_visible() -> None:
    old = {"audit": [{"seq": i, "entry_hash": f"h{i}"} for i in range(3)]}
    new = json.loads(json.dumps(old))
    new["audit"][1]["entry_hash"] = "forged"

    text = render_text([ScenarioResult("s", ScenarioStatus.REGRESSED, diff=diff_traces(old, new))])

    assert 'audit[1].entry_hash: "h1" → "forged"' in text
    assert "as a consequence" not in text


def test_nearest_request_diff_marks_the_changed_word() -> None:
    long_line = "x " * 100 + "answer with a short summary" + " y" * 100
    message = "\n".join(
        [
            "1 provider request(s) were not in the cassette; first: no answer",
            "diff against the nearest recorded request:",
            f'-      "content": "{long_line}",',
            f'+      "content": "{long_line.replace("short", "brief")}",',
            "if the change is intended, re-record: harness-replay record <scenario>",
        ]
    )
    result = ScenarioResult("miss", ScenarioStatus.ERROR, message=message)

    text = render_text([result])

    assert "[-short-]{+brief+}" in text
    assert max(len(line) for line in text.splitlines()) < 120
    assert "harness-replay record miss" in text


def test_a_nearest_request_diff_seen_before_is_named_not_repeated() -> None:
    message = "\n".join(
        [
            "1 provider request(s) were not in the cassette; first: no answer",
            "diff against the nearest recorded request:",
            '-  "content": "answer with a short summary"',
            '+  "content": "answer with a brief summary"',
            "(replay continued with the recorded answers in order, to show the trace diff)",
        ]
    )
    results = [ScenarioResult(n, ScenarioStatus.ERROR, message=message) for n in ("a", "b", "c")]

    text = render_text(results)

    assert text.count("[-short-]{+brief+}") == 1
    assert text.count("(the same nearest-request diff as a, above)") == 2
