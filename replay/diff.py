"""Compare a replayed trace with its golden: localise by section and entry, deepdiff what differs.

Plain DeepDiff over a whole trace costs seconds once the audit log holds thousands of
entries. Here each top-level section is first checked for equality as a whole; in a
list section the entries are then compared one by one (aligned by content when an
entry was inserted or removed), and DeepDiff runs only on the entry pairs that differ.

Equality is strict JSON equality: ``true`` is not ``1`` and ``1`` is not ``1.0``, as
in the golden's canonical bytes (Python's ``==`` alone would say both are equal).
"""

from __future__ import annotations

import difflib
import json
import marshal
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Final

from deepdiff import DeepDiff
from deepdiff.helper import NotPresent

from harness.canonical import dumps_canonical
from replay.results import DiffClass, Difference, TraceDiff

__all__ = [
    "CLASSIFICATION",
    "SECTION_ORDER",
    "classify",
    "diff_trace_bytes",
    "diff_traces",
    "find_nondeterminism",
    "text_diff",
    "word_diff",
]

# The order sections appear in docs/trace-format.md; reports follow it.
SECTION_ORDER: Final = (
    "format_version",
    "scenario",
    "api",
    "prompts",
    "transitions",
    "tool_calls",
    "approvals",
    "retries",
    "audit",
    "artifacts",
    "final",
)

_S: Final = DiffClass.STRUCTURAL
_C: Final = DiffClass.CONTENT

# section -> (class of fields not listed, {field path: class}). A field path is the
# dotted key path inside one entry with list indices dropped ("messages.content" is
# every prompts[*].messages[*].content); the longest listed prefix wins. Fields that
# docs/trace-format.md names sit where it puts them; the defaults cover the rest.
# Adding or removing a whole entry (or section) is always structural.
CLASSIFICATION: Final[Mapping[str, tuple[DiffClass, Mapping[str, DiffClass]]]] = {
    "format_version": (_S, {}),
    "scenario": (_C, {}),
    "api": (_C, {"step": _S, "request.method": _S, "request.path": _S, "response.status": _S}),
    # provider, model, temperature, seed and guard decisions are routing, not text
    "prompts": (_S, {"messages": _C, "tools": _C}),
    "transitions": (_S, {}),
    "tool_calls": (_S, {"args": _C, "result_sha256": _C}),
    "approvals": (_C, {"decision": _S, "action": _S}),
    "retries": (_S, {}),
    "audit": (_C, {"seq": _S, "action": _S}),
    "artifacts": (_C, {"run": _S, "path": _S}),
    "final": (_S, {}),
}
# A section the format does not know is a shape change until someone classifies it.
_UNKNOWN_SECTION: Final[tuple[DiffClass, Mapping[str, DiffClass]]] = (_S, {})

# Strings longer than this (or multi-line) get a text diff instead of a bare old -> new.
_TEXT_DIFF_THRESHOLD: Final = 60
_WORD_CONTEXT_TOKENS: Final = 12  # about six words either side of a change
_UNIFIED_CONTEXT_LINES: Final = 2

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_WORDS = re.compile(r"\s+|[^\s]+")

Part = str | int


def classify(section: str, field_path: str) -> DiffClass:
    """The class of a difference at ``field_path`` (dotted, no indices) inside ``section``."""
    default, fields = CLASSIFICATION.get(section, _UNKNOWN_SECTION)
    path = field_path
    while path:
        if path in fields:
            return fields[path]
        path = path.rpartition(".")[0]
    return default


def diff_traces(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> TraceDiff:
    """Every difference between a golden trace and a replayed one, in trace order."""
    differences: list[Difference] = []
    for section in _sections(expected, actual):
        if section not in actual:
            differences.append(Difference(section, section, "removed", _S, expected[section], None))
        elif section not in expected:
            differences.append(Difference(section, section, "added", _S, None, actual[section]))
        else:
            differences.extend(_diff_section(section, expected[section], actual[section]))
    return TraceDiff(tuple(differences))


def diff_trace_bytes(expected: bytes, actual: bytes) -> TraceDiff:
    """Like :func:`diff_traces` over ``trace.json`` bytes; equal bytes are not even parsed.

    Canonical files (what goldens are) are cut into sections and entries on their
    indentation, and only the pieces whose bytes differ are parsed; anything else is
    parsed whole.
    """
    if expected == actual:
        return TraceDiff()
    old_sections, new_sections = _split_sections(expected), _split_sections(actual)
    if old_sections is not None and new_sections is not None:
        try:
            return _diff_split(old_sections, new_sections)
        except ValueError:  # a piece is not JSON on its own: the layout was not canonical
            pass
    return diff_traces(_load_trace(expected, "expected"), _load_trace(actual, "actual"))


def find_nondeterminism(traces: Sequence[Mapping[str, Any]]) -> TraceDiff:
    """Where repeat runs disagree with the first: one difference per path, first seen wins."""
    seen: set[tuple[str, str]] = set()
    found: list[Difference] = []
    for repeat in traces[1:]:
        for difference in diff_traces(traces[0], repeat).differences:
            key = (difference.path, difference.change)
            if key not in seen:
                seen.add(key)
                found.append(difference)
    return TraceDiff(tuple(found))


def text_diff(old: str, new: str) -> str | None:
    """A unified diff for multi-line text, a word diff for a long line, ``None`` for short text."""
    if "\n" in old or "\n" in new:
        lines = difflib.unified_diff(
            old.splitlines(),
            new.splitlines(),
            fromfile="expected",
            tofile="actual",
            n=_UNIFIED_CONTEXT_LINES,
            lineterm="",
        )
        return "\n".join(lines)
    if max(len(old), len(new)) > _TEXT_DIFF_THRESHOLD:
        return word_diff(old, new)
    return None


def word_diff(old: str, new: str, *, context: int = _WORD_CONTEXT_TOKENS) -> str:
    """``old`` rewritten with ``[-removed-]{+added+}`` marks; long unchanged runs become ``…``."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    out: list[str] = []
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            out.append(_elide(a[i1:i2], context, head=index > 0, tail=index < len(opcodes) - 1))
            continue
        if i2 > i1:
            out.append(f"[-{''.join(a[i1:i2])}-]")
        if j2 > j1:
            out.append(f"{{+{''.join(b[j1:j2])}+}}")
    return "".join(out)


def _elide(tokens: list[str], context: int, *, head: bool, tail: bool) -> str:
    """Keep ``context`` tokens after the previous change (head) and before the next (tail)."""
    keep = (context if head else 0) + (context if tail else 0)
    if len(tokens) <= keep + 1:
        return "".join(tokens)
    before = tokens[:context] if head else []
    after = tokens[len(tokens) - context :] if tail else []
    return "".join(before) + "…" + "".join(after)


def _load_trace(data: bytes, which: str) -> Mapping[str, Any]:
    try:
        trace = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"the {which} trace is not valid JSON: {exc}") from exc
    if not isinstance(trace, dict):
        raise ValueError(
            f"the {which} trace is a JSON {type(trace).__name__}, not an object; "
            "see docs/trace-format.md"
        )
    return trace


def _sections(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    present = set(expected) | set(actual)
    known = [s for s in SECTION_ORDER if s in present]
    return known + sorted(present.difference(SECTION_ORDER))


def _diff_section(section: str, old: Any, new: Any) -> list[Difference]:
    # Only the cheap half of _same here: fingerprinting a whole section costs more than
    # the entry-by-entry comparison below, which is exact anyway.
    if old == new and _marshal_equal(old, new):
        return []
    if isinstance(old, list) and isinstance(new, list):
        return _diff_entries(section, old, new)
    return _deep(section, (), old, new)


def _diff_entries(section: str, old: list[Any], new: list[Any]) -> list[Difference]:
    """Differences in a list section: pairwise when lengths match, aligned by content otherwise."""
    if len(old) == len(new):
        differing = _differing_indices(old, new)
        return [d for i in differing for d in _deep(section, (i,), old[i], new[i])]
    # A trace grows or shrinks in one place most of the time: trim the equal ends
    # cheaply, then align the middle on content so an inserted entry is one "added".
    start = _common_prefix(old, new)
    end = _common_prefix(old[start:][::-1], new[start:][::-1])
    mid_old, mid_new = old[start : len(old) - end], new[start : len(new) - end]
    return _align(
        section,
        start,
        [_fingerprint(e) for e in mid_old],
        [_fingerprint(e) for e in mid_new],
        old_entry=mid_old.__getitem__,
        new_entry=mid_new.__getitem__,
    )


def _align(
    section: str,
    start: int,
    old_keys: Sequence[Hashable],
    new_keys: Sequence[Hashable],
    *,
    old_entry: Callable[[int], Any],
    new_entry: Callable[[int], Any],
) -> list[Difference]:
    """Align two runs of entries (from index ``start``) on their keys and diff what differs.

    An unmatched entry is added or removed; a replaced run is diffed pair by pair.
    """
    matcher = difflib.SequenceMatcher(None, old_keys, new_keys, autojunk=False)
    differences: list[Difference] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)
        for k in range(paired):
            pair = (old_entry(i1 + k), new_entry(j1 + k))
            differences += _deep(section, (start + j1 + k,), *pair)
        for i in range(i1 + paired, i2):
            path = _readable(section, (start + i,))
            differences.append(Difference(section, path, "removed", _S, old_entry(i), None))
        for j in range(j1 + paired, j2):
            path = _readable(section, (start + j,))
            differences.append(Difference(section, path, "added", _S, None, new_entry(j)))
    return differences


def _deep(section: str, prefix: tuple[Part, ...], old: Any, new: Any) -> list[Difference]:
    """DeepDiff on one differing pair, converted to readable, classified differences."""
    tree = DeepDiff(old, new, view="tree", threshold_to_diff_deeper=0)
    found: list[tuple[tuple[Part, ...], str, Any, Any]] = []
    for report_type, levels in tree.items():
        change = _change_name(report_type)
        for level in levels:
            parts = prefix + tuple(level.path(output_format="list"))
            found.append((parts, change, _present(level.t1), _present(level.t2)))
    found.sort(key=lambda item: [(isinstance(p, str), p) for p in item[0]])
    differences = []
    for parts, change, old_value, new_value in found:
        inner = parts[len(prefix) :]
        # an empty inner path: the whole entry (or section) became another kind of value
        fields = ".".join(p for p in inner if isinstance(p, str))
        klass = classify(section, fields) if inner else _S
        diff_text = None
        if change == "changed" and isinstance(old_value, str) and isinstance(new_value, str):
            diff_text = text_diff(old_value, new_value)
        differences.append(
            Difference(
                section,
                _readable(section, parts),
                change,
                klass,
                old_value,
                new_value,
                diff_text,
            )
        )
    return differences


def _change_name(report_type: str) -> str:
    if report_type == "type_changes":
        return "type_changed"
    if report_type.endswith("_added"):
        return "added"
    if report_type.endswith("_removed"):
        return "removed"
    return "changed"


def _present(value: Any) -> Any:
    return None if isinstance(value, NotPresent) else value


def _readable(section: str, parts: Sequence[Part]) -> str:
    """``prompts[0].messages[0].content``; odd keys are quoted: ``final.runs["a b"]``."""
    out = [section]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENTIFIER.match(part):
            out.append(f".{part}")
        else:
            out.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(out)


# --- strict equality, fast ---------------------------------------------------------------
#
# Python's == runs in C but says True == 1 == 1.0; marshal bytes (C too) tell the types
# apart but also see dict key order. So: == first, marshal to confirm, and the canonical
# golden form as the arbiter when the two disagree.


def _same(old: Any, new: Any) -> bool:
    """Strict JSON equality: what the golden's canonical bytes would say."""
    if old != new:
        return False
    return _marshal_equal(old, new) or _fingerprint(old) == _fingerprint(new)


def _marshal_equal(old: Any, new: Any) -> bool:
    try:
        # version 2: no back-references, so shared objects do not change the bytes
        return marshal.dumps(old, 2) == marshal.dumps(new, 2)
    except ValueError:  # not a plain JSON value (e.g. a read-only mapping)
        return False


def _fingerprint(value: Any) -> str:
    """The golden form of a value: equal fingerprints are equal bytes in trace.json."""
    return dumps_canonical(value)


def _differing_indices(old: list[Any], new: list[Any]) -> list[int]:
    """Indices where two equal-length lists differ strictly."""
    loose = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    skip = set(loose)
    if _marshal_equal(
        [a for i, a in enumerate(old) if i not in skip],
        [b for i, b in enumerate(new) if i not in skip],
    ):
        return loose
    return [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if not _same(a, b)]


def _common_prefix(old: list[Any], new: list[Any]) -> int:
    """Length of the strictly equal common prefix of two lists."""
    length = 0
    for a, b in zip(old, new, strict=False):
        if a != b:
            break
        length += 1
    if _marshal_equal(old[:length], new[:length]):
        return length
    for i in range(length):
        if not _same(old[i], new[i]):
            return i
    return length


# --- canonical bytes: parse only the pieces that differ -----------------------------------
#
# dumps_canonical indents by two and JSON strings hold no raw newline, so in a golden
# every line at indent 2 that opens with a quote is a top-level key, and inside a list
# section every line at indent 4 after ",\n" starts an entry. Equal bytes are equal
# values; differing bytes are parsed and diffed like any other value. A piece that does
# not parse on its own means the layout was not canonical: the caller parses it whole.

_KEY_LINE = b'\n  "'
_TOP_LEVEL_KEY = re.compile(rb'  ("(?:[^"\\\n]|\\.)*"): ')
_ENTRY_BREAK = re.compile(rb",\n(?=    [^ ])")
_OBJECT_OPEN, _OBJECT_CLOSE = b"{\n", b"\n}\n"
_LIST_OPEN, _LIST_CLOSE = b"[\n", b"\n  ]"
_OBJECT_ENTRY_OPEN, _OBJECT_ENTRY_CLOSE = b"    {", b"\n    }"
_OBJECT_ENTRY_BREAK = b"\n    },\n"


def _split_sections(data: bytes) -> dict[str, bytes] | None:
    """Top-level member bytes of a canonical trace, or ``None`` if it does not look canonical."""
    if not (data.startswith(_OBJECT_OPEN) and data.endswith(_OBJECT_CLOSE)):
        return None
    # bytes.find runs in C; a MULTILINE regex over megabytes is several times slower
    starts = []
    at = data.find(_KEY_LINE)
    while at != -1:
        starts.append(at + 1)
        at = data.find(_KEY_LINE, at + 1)
    if not starts or starts[0] != len(_OBJECT_OPEN):
        return None
    sections: dict[str, bytes] = {}
    for begin, following in zip(starts, [*starts[1:], None], strict=True):
        key = _TOP_LEVEL_KEY.match(data, begin)
        if key is None:
            return None
        if following is None:
            value = data[key.end() : len(data) - len(_OBJECT_CLOSE)]
        else:
            end = following - 1  # the newline before the next key line
            value = data[key.end() : end - 1 if data[end - 1 : end] == b"," else end]
        name = json.loads(key.group(1))
        if name in sections:
            return None
        sections[name] = value
    return sections


def _split_entries(value: bytes) -> list[bytes] | None:
    """Entry bytes of a canonical list value, or ``None`` if it is not a list."""
    if value == b"[]":
        return []
    if not (value.startswith(_LIST_OPEN) and value.endswith(_LIST_CLOSE)):
        return None
    inner = value[len(_LIST_OPEN) : -len(_LIST_CLOSE)]
    # Entries are objects in every known section; bytes.split on the closing line of
    # an entry is much faster than the general regex, which covers any other layout.
    parts = inner.split(_OBJECT_ENTRY_BREAK)
    entries = [part + _OBJECT_ENTRY_CLOSE for part in parts[:-1]] + parts[-1:]
    if all(entry.startswith(_OBJECT_ENTRY_OPEN) for entry in entries):
        return entries
    return _ENTRY_BREAK.split(inner)


def _diff_split(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> TraceDiff:
    differences: list[Difference] = []
    for section in _sections(old, new):
        if section not in new:
            differences.append(
                Difference(section, section, "removed", _S, _parse(old[section]), None)
            )
        elif section not in old:
            differences.append(
                Difference(section, section, "added", _S, None, _parse(new[section]))
            )
        elif old[section] != new[section]:
            differences += _diff_split_section(section, old[section], new[section])
    return TraceDiff(tuple(differences))


def _diff_split_section(section: str, old: bytes, new: bytes) -> list[Difference]:
    old_entries, new_entries = _split_entries(old), _split_entries(new)
    if old_entries is None or new_entries is None:
        return _diff_section(section, _parse(old), _parse(new))
    if len(old_entries) == len(new_entries):
        pairs = zip(old_entries, new_entries, strict=True)
        return [
            d
            for i, (a, b) in enumerate(pairs)
            if a != b
            for d in _deep(section, (i,), _parse(a), _parse(b))
        ]
    start = _bytes_prefix(old_entries, new_entries)
    end = _bytes_prefix(old_entries[start:][::-1], new_entries[start:][::-1])
    mid_old = old_entries[start : len(old_entries) - end]
    mid_new = new_entries[start : len(new_entries) - end]
    return _align(
        section,
        start,
        mid_old,
        mid_new,
        old_entry=lambda i: _parse(mid_old[i]),
        new_entry=lambda j: _parse(mid_new[j]),
    )


def _bytes_prefix(old: list[bytes], new: list[bytes]) -> int:
    length = 0
    for a, b in zip(old, new, strict=False):
        if a != b:
            break
        length += 1
    return length


def _parse(piece: bytes) -> Any:
    return json.loads(piece)  # a ValueError here sends the caller to the whole-file parse
