"""Synthetic golden material for engine tests: a correctly chained audit log and its trace."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from harness.canonical import dumps_canonical
from harness.integrity import GENESIS_HASH, make_entry


def chained_audit(n: int, *, note: str | None = None, action: str = "run.transition") -> list[dict[str, Any]]:
    """``n`` entries linked by prev_hash, as the service writes them."""
    entries: list[dict[str, Any]] = []
    prev = GENESIS_HASH
    for seq in range(n):
        payload: dict[str, Any] = {"n": seq} if note is None else {"n": seq, "note": note}
        entry = make_entry(
            seq=seq,
            prev_hash=prev,
            at=f"2026-01-01T09:00:{seq:02d}+00:00",
            actor="key_alice",
            tenant="acme",
            action=action,
            target=f"run_0/{seq}",
            payload=payload,
        )
        entries.append(entry)
        prev = entry["entry_hash"]
    return entries


def trace_bytes(entries: list[dict[str, Any]], *, final: str = "SUCCEEDED") -> bytes:
    """A minimal canonical trace.json holding ``entries`` as its audit section."""
    return dumps_canonical(
        {"format_version": 1, "audit": entries, "final": {"runs": {"run_0": final}}}
    ).encode()


def scratch_project(dest: Path, *names: str) -> Path:
    """A project under ``dest`` with the shipped keys, trust policy and the goldens ``names``
    (each with its cassette): small enough that a full check or verify is quick."""
    source = Path(__file__).resolve().parents[2]
    (dest / "goldens").mkdir(parents=True)
    (dest / "cassettes").mkdir()
    for item in (source / "goldens").iterdir():
        if item.is_file():  # README, TRUST.yaml, TRUST.dsse.json
            shutil.copy2(item, dest / "goldens" / item.name)
    shutil.copytree(source / "goldens" / "keys", dest / "goldens" / "keys")
    for name in names:
        shutil.copytree(source / "goldens" / name, dest / "goldens" / name)
        shutil.copy2(source / "cassettes" / f"{name}.yaml", dest / "cassettes" / f"{name}.yaml")
    return dest
