"""What a replay found: per-scenario status, and the differences between a trace and its golden."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ScenarioStatus(StrEnum):
    """Outcome of one scenario in a check run."""

    PASSED = "passed"
    REGRESSED = "regressed"
    NONDETERMINISTIC = "nondeterministic"
    ERROR = "error"  # cassette miss, bad scenario file, bad signature: no verdict on the trace
    UPDATED = "updated"  # golden written in record mode

    @property
    def failed(self) -> bool:
        """True for statuses that fail the gate."""
        return self in _FAILING


_FAILING = frozenset(
    {ScenarioStatus.REGRESSED, ScenarioStatus.NONDETERMINISTIC, ScenarioStatus.ERROR}
)


class DiffClass(StrEnum):
    """How serious a difference is, per docs/trace-format.md."""

    STRUCTURAL = "structural"  # orchestration shape changed
    CONTENT = "content"  # text or bytes changed, shape kept


@dataclass(frozen=True)
class Difference:
    """One localised difference between an expected and an actual trace.

    ``old`` is ``None`` for an added value and ``new`` is ``None`` for a removed one;
    ``change`` tells them apart from a value that really is ``null``.
    """

    section: str
    path: str  # readable, e.g. "prompts[0].messages[0].content"
    change: str  # "changed" | "added" | "removed" | "type_changed"
    klass: DiffClass
    old: Any
    new: Any
    text_diff: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "section": self.section,
            "path": self.path,
            "change": self.change,
            "class": self.klass.value,
            "old": self.old,
            "new": self.new,
            "text_diff": self.text_diff,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Difference:
        """Inverse of :meth:`to_json`."""
        return cls(
            section=data["section"],
            path=data["path"],
            change=data["change"],
            klass=DiffClass(data["class"]),
            old=data["old"],
            new=data["new"],
            text_diff=data["text_diff"],
        )


@dataclass(frozen=True)
class TraceDiff:
    """All differences between two traces, in trace order."""

    differences: tuple[Difference, ...] = ()

    @property
    def equal(self) -> bool:
        """True when the traces have no difference."""
        return not self.differences

    @property
    def structural(self) -> tuple[Difference, ...]:
        """The differences that change the orchestration shape."""
        return tuple(d for d in self.differences if d.klass is DiffClass.STRUCTURAL)

    @property
    def content(self) -> tuple[Difference, ...]:
        """The differences in text or bytes only."""
        return tuple(d for d in self.differences if d.klass is DiffClass.CONTENT)

    @property
    def sections(self) -> tuple[str, ...]:
        """Sorted names of the sections that differ."""
        return tuple(sorted({d.section for d in self.differences}))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "equal": self.equal,
            "structural": len(self.structural),
            "content": len(self.content),
            "sections": list(self.sections),
            "differences": [d.to_json() for d in self.differences],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TraceDiff:
        """Inverse of :meth:`to_json` (the counts are derived, so they are not read back)."""
        return cls(tuple(Difference.from_json(d) for d in data["differences"]))


@dataclass(frozen=True)
class ScenarioResult:
    """The verdict on one scenario, with the evidence a reviewer needs."""

    name: str
    status: ScenarioStatus
    diff: TraceDiff | None = None
    message: str = ""
    new_trace_path: str | None = None  # where trace.json.new was written, if it was
    repeat_paths: tuple[str, ...] = ()  # traces of `check --repeat N` runs

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (what ``render_json`` emits per scenario)."""
        return {
            "name": self.name,
            "status": self.status.value,
            "message": self.message,
            "new_trace_path": self.new_trace_path,
            "repeat_paths": list(self.repeat_paths),
            "diff": None if self.diff is None else self.diff.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioResult:
        """Inverse of :meth:`to_json`."""
        diff = data.get("diff")
        return cls(
            name=data["name"],
            status=ScenarioStatus(data["status"]),
            diff=None if diff is None else TraceDiff.from_json(diff),
            message=data.get("message", ""),
            new_trace_path=data.get("new_trace_path"),
            repeat_paths=tuple(data.get("repeat_paths", ())),
        )
