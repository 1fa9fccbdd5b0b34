"""The report's first screen: which scenarios, which sections, the change, the one command to run next.

Also the two ways the report stays short: identical differences across scenarios are shown
once ("the same change in 12 scenarios"), and the ``entry_hash``/``prev_hash`` values that
change only because an audit payload above them changed fold into one line.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from replay.diff import word_diff
from replay.results import Difference, ScenarioResult, ScenarioStatus

# gate.py says this when the replay asked the provider something the cassette never recorded.
CASSETTE_MISS_MARK: Final = "not in the cassette"
_INDEX = re.compile(r"\[\d+\]")
_ENTRY = re.compile(r"^audit\[(\d+)\]\.(entry_hash|prev_hash)$")
_AUDIT_ENTRY = re.compile(r"^audit\[(\d+)\]")
_WHOLE_LINE: Final = 100
_SUMMARISE_AT: Final = 4  # this many scenarios with the same status and sections share one entry
_LONG_LINE_CONTEXT: Final = 12  # tokens (about six words) either side of a change


def had_cassette_miss(result: ScenarioResult) -> bool:
    """True when the replay made provider requests the cassette has no answer for."""
    return CASSETTE_MISS_MARK in result.message


@dataclass
class ChangeGroup:
    """One difference, identical in several scenarios (paths may differ by list index)."""

    number: int
    sample: Difference
    path_pattern: str
    places: list[tuple[str, str]] = field(default_factory=list)  # (scenario, path)

    @property
    def scenarios(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.places))


def _group_key(difference: Difference) -> tuple[str, str, str, str]:
    if difference.text_diff is not None:
        body = difference.text_diff
    else:
        body = json.dumps([difference.old, difference.new], sort_keys=True, default=str)
    return difference.section, _INDEX.sub("[*]", difference.path), difference.change, body


def shared_changes(results: Sequence[ScenarioResult]) -> list[ChangeGroup]:
    """Differences that occur, identically, in two or more scenarios; most widespread first."""
    groups: dict[tuple[str, str, str, str], ChangeGroup] = {}
    for result in results:
        if result.diff is None:
            continue
        for difference in result.diff.differences:
            key = _group_key(difference)
            group = groups.setdefault(key, ChangeGroup(0, difference, key[1]))
            group.places.append((result.name, difference.path))
    shared = [g for g in groups.values() if len(g.scenarios) > 1]
    shared.sort(key=lambda g: (-len(g.scenarios), g.path_pattern))
    for number, group in enumerate(shared, start=1):
        group.number = number
    return shared


def group_of(groups: Iterable[ChangeGroup], name: str, difference: Difference) -> ChangeGroup | None:
    """The shared change ``difference`` of scenario ``name`` belongs to, if any."""
    for group in groups:
        if (name, difference.path) in group.places and _group_key(group.sample) == _group_key(difference):
            return group
    return None


@dataclass(frozen=True)
class KnockOn:
    """Hash values that changed only because an audit entry at or above them changed."""

    first: int
    last: int
    count: int

    def line(self) -> str:
        span = f"audit[{self.first}]" if self.first == self.last else f"audit[{self.first}..{self.last}]"
        return (
            f"    {span}: {self.count} entry_hash/prev_hash value(s) changed as a consequence of the "
            "payload change(s) above (the hash chain links every later entry)"
        )


def fold_knock_on(differences: Sequence[Difference]) -> tuple[list[Difference], KnockOn | None]:
    """``differences`` without the audit hash changes explained by an earlier payload change.

    A hash that changed with no content change at or above it is *not* folded: that is what
    tampering looks like, so it stays in plain sight.
    """
    content_entries = [
        int(m.group(1))
        for d in differences
        if d.section == "audit" and (m := _AUDIT_ENTRY.match(d.path)) and not _ENTRY.match(d.path)
    ]
    if not content_entries:
        return list(differences), None
    first_change = min(content_entries)
    kept: list[Difference] = []
    folded: list[int] = []
    for difference in differences:
        match = _ENTRY.match(difference.path) if difference.section == "audit" else None
        if match and int(match.group(1)) >= first_change and difference.change == "changed":
            folded.append(int(match.group(1)))
        else:
            kept.append(difference)
    if not folded:
        return kept, None
    return kept, KnockOn(min(folded), max(folded), len(folded))


def highlight_pairs(lines: Sequence[str], *, indent: str = "") -> list[str]:
    """In unified-diff lines, turn each ``-old``/``+new`` pair into one ``~`` word-diff line.

    The changed words get ``[-…-]{+…+}`` marks and long unchanged stretches are elided, so a
    480-character line shows the one word that changed.
    """
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        body = line[len(indent) :] if line.startswith(indent) else None
        nxt = lines[index + 1] if index + 1 < len(lines) else ""
        nxt_body = nxt[len(indent) :] if nxt.startswith(indent) else None
        if (
            body is not None
            and nxt_body is not None
            and body.startswith("-")
            and not body.startswith("---")
            and nxt_body.startswith("+")
            and not nxt_body.startswith("+++")
        ):
            old, new = body[1:], nxt_body[1:]
            # A line that fits the screen is kept whole; only a long one is elided around the change.
            context = 1000 if max(len(old), len(new)) <= _WHOLE_LINE else _LONG_LINE_CONTEXT
            out.append(f"{indent}~{word_diff(old, new, context=context)}")
            index += 2
            continue
        out.append(line)
        index += 1
    return out


def overview(results: Sequence[ScenarioResult], groups: Sequence[ChangeGroup]) -> list[str]:
    """One row per failing scenario: name, status, sections, and whether the cassette missed."""
    failing = [r for r in results if r.status.failed]
    width = max((len(r.name) for r in failing), default=0)
    status_width = max((len(r.status.value) for r in failing), default=0)
    alike: dict[tuple[str, str], list[str]] = {}
    for result in failing:
        sections = ", ".join(result.diff.sections) if result.diff and not result.diff.equal else ""
        notes = [sections] if sections else []
        if had_cassette_miss(result):
            notes.append("cassette miss")
        elif result.status is ScenarioStatus.ERROR and result.message:
            notes.append(result.message.splitlines()[0][:70])
        alike.setdefault((result.status.value.upper(), "; ".join(notes)), []).append(result.name)
    rows: list[str] = []
    for (status, story), names in alike.items():
        if len(names) >= _SUMMARISE_AT:  # many scenarios, same story: one entry, names wrapped
            rows.append(f"  {len(names)} scenarios {status}: {story}")
            rows += textwrap.wrap(
                ", ".join(names), width=100, initial_indent="    ", subsequent_indent="    "
            )
        else:
            rows += [f"  {name:<{width}}  {status:<{status_width}}  {story}" for name in names]
    return rows


def next_steps(results: Sequence[ScenarioResult]) -> list[str]:
    """The one command to run next, matched to the case."""
    rerecord = [r.name for r in results if r.status.failed and had_cassette_miss(r)]
    review = [r.name for r in results if r.status is ScenarioStatus.REGRESSED and not had_cassette_miss(r)]
    steps = []
    if rerecord:
        names = " ".join(rerecord) if len(rerecord) <= 4 else "--all"
        steps.append("next: the provider requests changed, so the cassettes have no answers for them;")
        steps.append(f"      if the change is intended, re-record: harness-replay record {names}")
    if review:
        steps.append("next: if the change is intended, review and accept it: harness-replay review")
    return steps
