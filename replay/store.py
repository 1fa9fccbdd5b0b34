"""The on-disk golden store: where each scenario's goldens, cassettes and pending updates live.

    goldens/<name>/scenario.yaml      input
    goldens/<name>/trace.json         expected trace (canonical JSON, format_version 1)
    goldens/<name>/trace.json.new     pending update written by a failed check (never under CI)
    goldens/<name>/audit.jsonl        the trace's audit section, one JCS entry per line
    goldens/<name>/audit.dsse.json    DSSE-signed statement over trace.json and audit.jsonl
    goldens/<name>/approvals.jsonl    append-only, hash-chained, signed approvals
    goldens/keys/*.pub.json           trusted public keys
    cassettes/<name>.yaml             provider cassette (+ <name>.yaml.new when re-recorded)

Every write goes to a temporary file in the same directory and is moved into place with
``os.replace``, so a reader never sees half a golden.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness.canonical import jcs_bytes
from harness.durable import write_atomic
from replay.errors import GoldenMissing, ScenarioError, UpdateRefused

__all__ = [
    "CASSETTES_DIR",
    "GOLDENS_DIR",
    "KEYS_DIR",
    "GoldenPaths",
    "GoldenStore",
    "atomic_write_bytes",
    "audit_jsonl_bytes",
    "ci_mode",
]

GOLDENS_DIR: Final = "goldens"
CASSETTES_DIR: Final = "cassettes"
KEYS_DIR: Final = "keys"
# Unit-level syrupy snapshots (replay.snapshots); syrupy itself reports unused ones.
SNAPSHOTS_DIR: Final = "_snapshots"

SCENARIO_FILE: Final = "scenario.yaml"
TRACE_FILE: Final = "trace.json"
NEW_SUFFIX: Final = ".new"
AUDIT_FILE: Final = "audit.jsonl"
AUDIT_DSSE_FILE: Final = "audit.dsse.json"
APPROVALS_FILE: Final = "approvals.jsonl"
CASSETTE_SUFFIX: Final = ".yaml"

_KNOWN_GOLDEN_FILES: Final = frozenset(
    {SCENARIO_FILE, TRACE_FILE, TRACE_FILE + NEW_SUFFIX, AUDIT_FILE, AUDIT_DSSE_FILE, APPROVALS_FILE}
)


def ci_mode() -> bool:
    """True when running under CI (``CI=true``), where goldens are never written."""
    return os.environ.get("CI") == "true"


def audit_jsonl_bytes(entries: Iterable[Mapping[str, Any]]) -> bytes:
    """``audit.jsonl`` bytes: one RFC 8785 (JCS) line per entry, each ``\\n``-terminated."""
    return b"".join(jcs_bytes(dict(entry)) + b"\n" for entry in entries)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so it is either the old file or the complete new one."""
    write_atomic(path, data)


@dataclass(frozen=True)
class GoldenPaths:
    """Every file that belongs to one scenario."""

    name: str
    folder: Path
    scenario: Path
    trace: Path
    trace_new: Path
    audit: Path
    audit_dsse: Path
    approvals: Path
    cassette: Path
    cassette_new: Path

    @property
    def new_files(self) -> tuple[Path, Path]:
        """The pending-update files (trace first, then cassette)."""
        return (self.trace_new, self.cassette_new)


class GoldenStore:
    """Goldens and cassettes of a project rooted at ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.goldens_dir = self.root / GOLDENS_DIR
        self.cassettes_dir = self.root / CASSETTES_DIR
        self.keys_dir = self.goldens_dir / KEYS_DIR

    def __repr__(self) -> str:
        return f"GoldenStore({str(self.root)!r})"

    def display(self, path: Path) -> str:
        """``path`` relative to the project root when it is inside it (for messages)."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    # --- reading -------------------------------------------------------------------------

    def scenario_names(self) -> list[str]:
        """Sorted names of the golden folders that hold a ``scenario.yaml``."""
        if not self.goldens_dir.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.goldens_dir.iterdir()
            if entry.is_dir() and entry.name != KEYS_DIR and (entry / SCENARIO_FILE).is_file()
        )

    def paths(self, name: str) -> GoldenPaths:
        """All paths of scenario ``name`` (which must be a plain folder name)."""
        _check_name(name)
        folder = self.goldens_dir / name
        cassette = self.cassettes_dir / f"{name}{CASSETTE_SUFFIX}"
        return GoldenPaths(
            name=name,
            folder=folder,
            scenario=folder / SCENARIO_FILE,
            trace=folder / TRACE_FILE,
            trace_new=folder / (TRACE_FILE + NEW_SUFFIX),
            audit=folder / AUDIT_FILE,
            audit_dsse=folder / AUDIT_DSSE_FILE,
            approvals=folder / APPROVALS_FILE,
            cassette=cassette,
            cassette_new=cassette.with_name(cassette.name + NEW_SUFFIX),
        )

    def read_trace_bytes(self, name: str) -> bytes | None:
        """The golden ``trace.json`` bytes, or None when the scenario has no golden yet."""
        try:
            return self.paths(name).trace.read_bytes()
        except FileNotFoundError:
            return None

    def pending(self) -> list[str]:
        """Scenarios with a pending update (``trace.json.new`` or a cassette ``.new``)."""
        return [
            name
            for name in self.scenario_names()
            if any(path.exists() for path in self.paths(name).new_files)
        ]

    def unreferenced(self, only: Iterable[str] | None = None) -> list[Path]:
        """Files and folders no scenario accounts for; they fail the run until removed.

        Cassettes (and their ``.new``) without a scenario, golden folders without
        ``scenario.yaml``, and anything in a golden folder besides the known files.
        Hidden files (``.gitkeep``, editor swap files) are ignored. With ``only``, just
        the strays inside those scenarios' golden folders.
        """
        names = set(self.scenario_names())
        found: list[Path] = []
        if only is not None:
            for name in sorted(set(only)):
                folder = self.paths(name).folder
                if folder.is_dir():
                    found += [
                        child
                        for child in sorted(folder.iterdir())
                        if not _hidden(child) and child.name not in _KNOWN_GOLDEN_FILES
                    ]
            return found
        if self.goldens_dir.is_dir():
            for entry in sorted(self.goldens_dir.iterdir()):
                if _hidden(entry) or not entry.is_dir() or entry.name in {KEYS_DIR, SNAPSHOTS_DIR}:
                    continue
                if entry.name not in names:
                    found.append(entry)
                    continue
                found += [
                    child
                    for child in sorted(entry.iterdir())
                    if not _hidden(child) and child.name not in _KNOWN_GOLDEN_FILES
                ]
        if self.cassettes_dir.is_dir():
            expected: set[str] = set()
            for name in names:
                paths = self.paths(name)
                expected |= {paths.cassette.name, paths.cassette_new.name}
            found += [
                entry
                for entry in sorted(self.cassettes_dir.iterdir())
                if not _hidden(entry) and entry.name not in expected
            ]
        return found

    # --- writing -------------------------------------------------------------------------

    def write_new(self, name: str, trace_bytes: bytes, *, ci: bool) -> Path:
        """Write ``trace.json.new`` for review; refused under CI. Returns the path written."""
        paths = self.paths(name)
        if ci:
            raise UpdateRefused(
                f"scenario {name!r}: not writing {self.display(paths.trace_new)} because CI=true "
                "(CI never writes goldens); reproduce locally with `harness-replay check`, then "
                "`harness-replay review`"
            )
        atomic_write_bytes(paths.trace_new, trace_bytes)
        return paths.trace_new

    def write_golden(
        self,
        name: str,
        trace_bytes: bytes,
        audit_entries: Iterable[Mapping[str, Any]],
        *,
        cassette_new: Path | None,
    ) -> None:
        """Record mode: write ``trace.json`` and ``audit.jsonl``; move a freshly recorded
        cassette into place. A stale ``trace.json.new`` is removed (the golden supersedes it).

        The signature (``audit.dsse.json``) is not touched: re-sign with ``sign_golden``.
        """
        paths = self.paths(name)
        if cassette_new is not None and not cassette_new.is_file():
            raise GoldenMissing(
                f"scenario {name!r}: the recorded cassette {self.display(cassette_new)} "
                "does not exist; the recording did not finish"
            )
        atomic_write_bytes(paths.trace, trace_bytes)
        atomic_write_bytes(paths.audit, audit_jsonl_bytes(audit_entries))
        if cassette_new is not None and cassette_new != paths.cassette:
            paths.cassette.parent.mkdir(parents=True, exist_ok=True)
            os.replace(cassette_new, paths.cassette)
        paths.trace_new.unlink(missing_ok=True)

    def promote(self, name: str) -> list[Path]:
        """Move the pending ``.new`` files over the goldens and re-derive ``audit.jsonl``.

        Each move is an atomic ``os.replace``; the cassette goes first, so an interrupted
        promote leaves ``trace.json.new`` in place and the scenario still pending.
        Returns the golden paths that were replaced.
        """
        paths = self.paths(name)
        if not any(path.exists() for path in paths.new_files):
            raise GoldenMissing(
                f"scenario {name!r} has no pending update (neither "
                f"{self.display(paths.trace_new)} nor {self.display(paths.cassette_new)} exists)"
            )
        # Parsed before anything moves, so an unreadable trace.json.new changes nothing.
        audit = _audit_section(paths.trace_new) if paths.trace_new.exists() else None
        replaced: list[Path] = []
        if paths.cassette_new.exists():
            os.replace(paths.cassette_new, paths.cassette)
            replaced.append(paths.cassette)
        if audit is not None:
            # audit.jsonl mirrors trace.json's audit section; write it first from the new
            # trace so the pair never disagrees once trace.json is in place.
            atomic_write_bytes(paths.audit, audit_jsonl_bytes(audit))
            os.replace(paths.trace_new, paths.trace)
            replaced += [paths.audit, paths.trace]
        return replaced

    def discard(self, name: str) -> list[Path]:
        """Delete the pending ``.new`` files of ``name``; returns the ones that existed."""
        removed: list[Path] = []
        for path in self.paths(name).new_files:
            if path.exists():
                path.unlink()
                removed.append(path)
        return removed


def _audit_section(trace_path: Path) -> list[Mapping[str, Any]]:
    """The ``audit`` list of a trace file (``ScenarioError`` when it is not a trace)."""
    try:
        trace = json.loads(trace_path.read_bytes())
    except ValueError as exc:
        raise ScenarioError(f"{trace_path} is not valid JSON: {exc}") from exc
    audit = trace.get("audit", []) if isinstance(trace, dict) else None
    if not isinstance(audit, list) or not all(isinstance(entry, dict) for entry in audit):
        raise ScenarioError(
            f"{trace_path}: 'audit' must be a list of objects (see docs/trace-format.md)"
        )
    return audit


def _check_name(name: str) -> None:
    if (
        not name
        or name != name.strip()
        or name.startswith(".")
        or name == KEYS_DIR
        or any(sep in name for sep in ("/", "\\", "\0"))
    ):
        raise ScenarioError(
            f"{name!r} is not a valid scenario name: use a plain folder name under "
            f"{GOLDENS_DIR}/ (no path separators, not {KEYS_DIR!r}, not hidden)"
        )


def _hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name == "__pycache__"
