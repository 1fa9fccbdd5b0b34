"""Trace diffing: localisation, alignment, classification and text diffs."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from harness.canonical import dumps_canonical
from replay.diff import (
    classify,
    diff_trace_bytes,
    diff_traces,
    find_nondeterminism,
    text_diff,
    word_diff,
)
from replay.results import DiffClass, Difference, TraceDiff

pytestmark = pytest.mark.tier0

SYSTEM_PROMPT = (
    "You are a helpful assistant that writes short, precise reports about the files "
    "in the workspace and never invents facts."
)


def make_trace(*, audit_entries: int = 30) -> dict[str, Any]:
    """A small valid trace in the shape of docs/trace-format.md."""
    run = "run_0001"
    return {
        "format_version": 1,
        "scenario": {
            "name": "happy_path_with_approval",
            "harness_version": "0.1.0",
            "templates": ["system@v1", "task@v1"],
            "model": "sim-gpt-small",
            "seed": 7,
            "start_time": "2026-01-01T09:00:00+00:00",
        },
        "api": [
            {
                "step": 0,
                "request": {"method": "POST", "path": "/api/harness/run", "body": {"task": "x"}},
                "response": {"status": 202, "body": {"run_id": run, "status": "PENDING"}},
            }
        ],
        "prompts": [
            {
                "call": 0,
                "run": run,
                "provider": "openai",
                "model": "sim-gpt-small",
                "temperature": 0,
                "seed": 7,
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": "Summarise notes.md"},
                ],
                "tools": [],
                "guard": [{"source": "user_task", "action": "allow", "findings": []}],
            }
        ],
        "transitions": [
            {"run": run, "seq": 0, "from": "PENDING", "to": "RUNNING", "reason": "claimed"},
            {"run": run, "seq": 1, "from": "RUNNING", "to": "AWAITING_APPROVAL", "reason": "gate"},
            {"run": run, "seq": 2, "from": "AWAITING_APPROVAL", "to": "SUCCEEDED", "reason": "ok"},
        ],
        "tool_calls": [
            {
                "run": run,
                "seq": 0,
                "name": "read_file",
                "args": {"path": "notes.md"},
                "outcome": "ok",
                "result_sha256": "a" * 64,
            }
        ],
        "approvals": [],
        "retries": [],
        "audit": [
            {
                "seq": i,
                "actor": "key_demo",
                "tenant": "acme",
                "action": "run.step",
                "target": run,
                "at": "2026-01-01T09:00:00+00:00",
                "payload": {"step": i},
                "prev_hash": f"{i:064x}",
                "entry_hash": f"{i + 1:064x}",
            }
            for i in range(audit_entries)
        ],
        "artifacts": [
            {
                "run": run,
                "path": "report.md",
                "size": 42,
                "sha256": "b" * 64,
                "content": "# Report\n\nThe notes list three tasks.\nAll are done.\n",
            }
        ],
        "final": {"runs": {run: "SUCCEEDED"}},
    }


def only(diff: TraceDiff) -> Difference:
    assert len(diff.differences) == 1, diff.differences
    return diff.differences[0]


def test_equal_traces_have_no_differences() -> None:
    diff = diff_traces(make_trace(), make_trace())

    assert diff.equal
    assert diff.sections == ()


def test_equal_bytes_short_circuit_without_parsing() -> None:
    assert diff_trace_bytes(b"not json at all", b"not json at all").equal


def test_bytes_with_other_whitespace_are_equal() -> None:
    canonical = dumps_canonical(make_trace()).encode()
    compact = dumps_canonical(make_trace()).replace("\n  ", "").encode()

    assert canonical != compact
    assert diff_trace_bytes(canonical, compact).equal


def test_unparsable_bytes_say_which_side() -> None:
    with pytest.raises(ValueError, match="actual trace is not valid JSON"):
        diff_trace_bytes(b"{}", b"{")
    with pytest.raises(ValueError, match="expected trace is a JSON list"):
        diff_trace_bytes(b"[]", b"{}")


def test_one_word_prompt_change_is_content_with_the_word_in_the_diff() -> None:
    actual = make_trace()
    message = actual["prompts"][0]["messages"][0]
    message["content"] = message["content"].replace("helpful", "careful")

    difference = only(diff_traces(make_trace(), actual))

    assert difference.path == "prompts[0].messages[0].content"
    assert difference.section == "prompts"
    assert difference.change == "changed"
    assert difference.klass is DiffClass.CONTENT
    assert difference.text_diff is not None
    assert "[-helpful-]{+careful+}" in difference.text_diff


def test_swapped_transitions_are_structural() -> None:
    actual = make_trace()
    transitions = actual["transitions"]
    transitions[0], transitions[1] = transitions[1], transitions[0]

    diff = diff_traces(make_trace(), actual)

    assert diff.differences
    assert diff.sections == ("transitions",)
    assert diff.content == ()
    assert {d.path for d in diff.structural} >= {"transitions[0].to", "transitions[1].to"}


def test_entry_inserted_in_the_middle_is_one_added_difference() -> None:
    expected = make_trace(audit_entries=200)
    actual = copy.deepcopy(expected)
    inserted = {"seq": 100, "actor": "key_demo", "action": "run.retry", "payload": {}}
    actual["audit"].insert(100, inserted)

    difference = only(diff_traces(expected, actual))

    assert difference.path == "audit[100]"
    assert difference.change == "added"
    assert difference.klass is DiffClass.STRUCTURAL
    assert difference.new == inserted
    assert difference.old is None


def test_entry_removed_from_the_middle_is_one_removed_difference() -> None:
    expected = make_trace(audit_entries=200)
    actual = copy.deepcopy(expected)
    removed = actual["audit"].pop(57)

    difference = only(diff_traces(expected, actual))

    assert (difference.path, difference.change) == ("audit[57]", "removed")
    assert difference.klass is DiffClass.STRUCTURAL
    assert difference.old == removed


def test_insert_next_to_a_changed_entry_reports_both() -> None:
    expected = make_trace(audit_entries=50)
    actual = copy.deepcopy(expected)
    actual["audit"][20]["payload"]["step"] = "twenty"
    actual["audit"].insert(30, {"seq": -1})

    diff = diff_traces(expected, actual)

    assert [(d.path, d.change) for d in diff.differences] == [
        ("audit[20].payload.step", "type_changed"),
        ("audit[30]", "added"),
    ]


def test_api_status_change_is_structural() -> None:
    actual = make_trace()
    actual["api"][0]["response"]["status"] = 200

    difference = only(diff_traces(make_trace(), actual))

    assert difference.path == "api[0].response.status"
    assert difference.klass is DiffClass.STRUCTURAL
    assert (difference.old, difference.new) == (202, 200)


def test_api_body_change_is_content() -> None:
    actual = make_trace()
    actual["api"][0]["response"]["body"]["status"] = "QUEUED"

    difference = only(diff_traces(make_trace(), actual))

    assert difference.path == "api[0].response.body.status"
    assert difference.klass is DiffClass.CONTENT


def test_artifact_content_change_is_content_with_a_unified_diff() -> None:
    actual = make_trace()
    artifact = actual["artifacts"][0]
    artifact["content"] = artifact["content"].replace("three tasks", "four tasks")

    difference = only(diff_traces(make_trace(), actual))

    assert difference.path == "artifacts[0].content"
    assert difference.klass is DiffClass.CONTENT
    assert difference.text_diff is not None
    assert difference.text_diff.startswith("--- expected\n+++ actual\n@@")
    assert "-The notes list three tasks." in difference.text_diff.splitlines()
    assert "+The notes list four tasks." in difference.text_diff.splitlines()


def test_added_field_inside_an_entry_is_classified_by_its_field() -> None:
    actual = make_trace()
    actual["tool_calls"][0]["args"]["encoding"] = "utf-8"

    difference = only(diff_traces(make_trace(), actual))

    assert (difference.path, difference.change) == ("tool_calls[0].args.encoding", "added")
    assert difference.klass is DiffClass.CONTENT


def test_missing_section_is_structural() -> None:
    actual = make_trace()
    del actual["retries"]

    difference = only(diff_traces(make_trace(), actual))

    assert (difference.path, difference.change) == ("retries", "removed")
    assert difference.klass is DiffClass.STRUCTURAL


def test_bool_and_int_are_not_equal_even_though_python_says_so() -> None:
    expected, actual = make_trace(), make_trace()
    expected["audit"][3]["payload"]["step"] = 1
    actual["audit"][3]["payload"]["step"] = True

    difference = only(diff_traces(expected, actual))

    assert difference.path == "audit[3].payload.step"
    assert difference.change == "type_changed"


def test_int_and_float_are_not_equal() -> None:
    actual = make_trace()
    actual["artifacts"][0]["size"] = 42.0

    assert only(diff_traces(make_trace(), actual)).change == "type_changed"


def test_key_order_does_not_matter() -> None:
    actual = make_trace()
    actual["audit"] = [dict(reversed(list(e.items()))) for e in actual["audit"]]
    actual["final"] = dict(reversed(list(actual["final"].items())))

    assert diff_traces(make_trace(), actual).equal


def test_odd_keys_are_quoted_in_paths() -> None:
    actual = make_trace()
    actual["final"]["runs"]["run 2"] = "FAILED"

    difference = only(diff_traces(make_trace(), actual))

    assert difference.path == 'final.runs["run 2"]'
    assert difference.klass is DiffClass.STRUCTURAL


def test_one_change_in_ten_thousand_entries_is_localised() -> None:
    expected = make_trace(audit_entries=10_000)
    actual = copy.deepcopy(expected)
    actual["audit"][7_654]["entry_hash"] = "f" * 64

    difference = only(diff_traces(expected, actual))

    assert difference.path == "audit[7654].entry_hash"
    assert difference.klass is DiffClass.CONTENT
    assert difference.text_diff is not None  # a 64-character string gets a word diff


def test_sections_are_sorted_and_unique() -> None:
    actual = make_trace()
    actual["transitions"][2]["to"] = "FAILED"
    actual["final"]["runs"]["run_0001"] = "FAILED"
    actual["artifacts"][0]["size"] = 43

    assert diff_traces(make_trace(), actual).sections == ("artifacts", "final", "transitions")


@pytest.mark.parametrize(
    ("section", "field", "expected"),
    [
        ("transitions", "reason", DiffClass.STRUCTURAL),
        ("tool_calls", "name", DiffClass.STRUCTURAL),
        ("tool_calls", "args.path", DiffClass.CONTENT),
        ("approvals", "decision", DiffClass.STRUCTURAL),
        ("approvals", "reason", DiffClass.CONTENT),
        ("api", "request.method", DiffClass.STRUCTURAL),
        ("api", "request.body.task", DiffClass.CONTENT),
        ("prompts", "messages.content", DiffClass.CONTENT),
        ("prompts", "tools.function.name", DiffClass.CONTENT),
        ("prompts", "model", DiffClass.STRUCTURAL),
        ("retries", "sleep_seconds", DiffClass.STRUCTURAL),
        ("audit", "payload.step", DiffClass.CONTENT),
        ("audit", "entry_hash", DiffClass.CONTENT),
        ("artifacts", "sha256", DiffClass.CONTENT),
        ("scenario", "model", DiffClass.CONTENT),
        ("final", "runs.run_1", DiffClass.STRUCTURAL),
        ("a_future_section", "anything", DiffClass.STRUCTURAL),
    ],
)
def test_classification_follows_the_trace_format(
    section: str, field: str, expected: DiffClass
) -> None:
    assert classify(section, field) is expected


def test_short_strings_get_no_text_diff() -> None:
    assert text_diff("RUNNING", "SUCCEEDED") is None


def test_word_diff_keeps_the_change_on_the_first_screen() -> None:
    words = " ".join(f"w{i}" for i in range(500))
    changed = words.replace("w250 ", "CHANGED ")

    rendered = word_diff(words, changed)

    assert "[-w250-]{+CHANGED+}" in rendered
    assert len(rendered) < 200
    assert rendered.startswith("…")
    assert rendered.endswith("…")


def test_nondeterminism_reports_where_repeats_disagree() -> None:
    first = make_trace()
    same = make_trace()
    drifting = make_trace()
    drifting["audit"][4]["at"] = "2026-01-01T09:00:01+00:00"
    drifting_again = copy.deepcopy(drifting)

    diff = find_nondeterminism([first, same, drifting, drifting_again])

    difference = only(diff)
    assert difference.path == "audit[4].at"
    assert (difference.old, difference.new) == (
        "2026-01-01T09:00:00+00:00",
        "2026-01-01T09:00:01+00:00",
    )


def test_nondeterminism_of_agreeing_runs_is_empty() -> None:
    assert find_nondeterminism([make_trace(), make_trace(), make_trace()]).equal
    assert find_nondeterminism([make_trace()]).equal
    assert find_nondeterminism([]).equal


def _change_prompt_word(t: dict[str, Any]) -> None:
    t["prompts"][0]["messages"][0]["content"] = SYSTEM_PROMPT.replace("helpful", "careful")


def _swap_transitions(t: dict[str, Any]) -> None:
    t["transitions"][0], t["transitions"][1] = t["transitions"][1], t["transitions"][0]


def _insert_audit_entry(t: dict[str, Any]) -> None:
    t["audit"].insert(15, {"seq": 15, "action": "run.retry"})


def _remove_last_audit_entry(t: dict[str, Any]) -> None:
    t["audit"].pop()


def _replace_two_audit_entries_with_three(t: dict[str, Any]) -> None:
    t["audit"][10:12] = [{"seq": "a"}, {"seq": "b"}, {"seq": "c"}]


def _drop_section(t: dict[str, Any]) -> None:
    del t["tool_calls"]


def _change_nested_list_in_unknown_section(t: dict[str, Any]) -> None:
    t["zz_extra"] = [1, 2, [3, 4]]


def _change_first_and_last_sections(t: dict[str, Any]) -> None:
    t["format_version"] = 2
    t["final"]["runs"]["run_0001"] = "FAILED"


def _fill_empty_list(t: dict[str, Any]) -> None:
    t["approvals"].append({"action": "write_artifact", "decision": "approved"})


def _layout_lookalike_string(t: dict[str, Any]) -> None:
    t["artifacts"][0]["content"] = '\n  "audit": [\n    {\n    },\n    {"seq": 1}'


def _change_scalar_list_entry(t: dict[str, Any]) -> None:
    t["scenario"]["templates"][1] = "task@v2"


MUTATIONS = [
    _change_prompt_word,
    _swap_transitions,
    _insert_audit_entry,
    _remove_last_audit_entry,
    _replace_two_audit_entries_with_three,
    _drop_section,
    _change_nested_list_in_unknown_section,
    _change_first_and_last_sections,
    _fill_empty_list,
    _layout_lookalike_string,
    _change_scalar_list_entry,
]


@pytest.mark.parametrize("mutate", MUTATIONS, ids=lambda m: m.__name__.strip("_"))
@pytest.mark.parametrize("layout", ["canonical", "indent4", "compact"])
def test_bytes_diff_matches_the_parsed_diff(mutate: Any, layout: str) -> None:
    expected, actual = make_trace(), make_trace()
    expected["zz_extra"] = [1, 2, [3]]
    mutate(actual)

    def encode(trace: dict[str, Any]) -> bytes:
        if layout == "canonical":
            return dumps_canonical(trace).encode()
        indent = 4 if layout == "indent4" else None
        return json.dumps(trace, indent=indent, sort_keys=True, ensure_ascii=False).encode()

    from_bytes = diff_trace_bytes(encode(expected), encode(actual))

    assert not from_bytes.equal
    assert from_bytes == diff_traces(expected, actual)
