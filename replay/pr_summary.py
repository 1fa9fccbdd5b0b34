"""Keep the markdown PR summary under GitHub's comment limit, however many scenarios changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from replay.results import ScenarioResult

MAX_COMMENT_CHARS: Final = 65_000
_BUDGET: Final = 64_000  # leaves room for the truncation note


def cap_markdown(text: str, results: Sequence[ScenarioResult], *, limit: int = MAX_COMMENT_CHARS) -> str:
    """``text`` when it fits in ``limit`` characters, else a shortened summary that does."""
    if len(text) < limit:
        return text
    budget = min(_BUDGET, limit - 1000)
    failing = [r for r in results if r.status.failed]
    head = [
        f"### harness-replay: {len(results)} scenarios, {len(failing)} failing",
        "",
        "| scenario | status | structural | content |",
        "|---|---|---:|---:|",
    ]
    lines = list(head)
    size = sum(len(line) + 1 for line in lines)
    shown = 0
    for result in failing:
        diff = result.diff
        row = (
            f"| {result.name.replace('|', '/')} | {result.status.value} | "
            f"{len(diff.structural) if diff else 0} | {len(diff.content) if diff else 0} |"
        )
        if size + len(row) + 1 > budget:
            break
        lines.append(row)
        size += len(row) + 1
        shown += 1
    lines += [
        "",
        f"> The full report is {len(text):,} characters, over the {limit:,}-character comment limit: "
        f"{shown} of {len(failing)} failing scenarios are listed here without their diffs. "
        "Download the HTML report (`harness-replay check --html report.html`) for the details.",
    ]
    return "\n".join(lines) + "\n"
