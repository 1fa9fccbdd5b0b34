"""The golden store: layout, pending updates, CI refusal, strays, promote and discard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.canonical import jcs_bytes
from harness.integrity import verify_chain
from replay.errors import GoldenMissing, ScenarioError, UpdateRefused
from replay.store import GoldenStore, audit_jsonl_bytes, ci_mode
from tests.support.goldens import chained_audit, trace_bytes

pytestmark = pytest.mark.tier1


def audit(n: int) -> list[dict[str, Any]]:
    return chained_audit(n)


def trace(n: int = 2, *, final: str = "SUCCEEDED") -> bytes:
    return trace_bytes(audit(n), final=final)


def scenario(store: GoldenStore, name: str) -> None:
    folder = store.goldens_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(f"name: {name}\n")


@pytest.fixture
def store(tmp_path: Path) -> GoldenStore:
    return GoldenStore(tmp_path)


def test_layout_and_names(store: GoldenStore) -> None:
    scenario(store, "zeta")
    scenario(store, "alpha")
    (store.goldens_dir / "no_scenario").mkdir()
    store.keys_dir.mkdir()
    assert store.scenario_names() == ["alpha", "zeta"]
    paths = store.paths("alpha")
    assert paths.trace == store.root / "goldens/alpha/trace.json"
    assert paths.trace_new.name == "trace.json.new"
    assert paths.audit_dsse.name == "audit.dsse.json"
    assert paths.cassette == store.root / "cassettes/alpha.yaml"
    assert paths.cassette_new == store.root / "cassettes/alpha.yaml.new"


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "keys", " pad"])
def test_bad_scenario_names_are_refused(store: GoldenStore, bad: str) -> None:
    with pytest.raises(ScenarioError, match="not a valid scenario name"):
        store.paths(bad)


def test_audit_jsonl_is_one_jcs_line_per_entry() -> None:
    entries = audit(3)
    data = audit_jsonl_bytes(entries)
    lines = data.split(b"\n")
    assert lines[-1] == b""
    assert lines[:-1] == [jcs_bytes(e) for e in entries]
    assert verify_chain([json.loads(line) for line in lines[:-1]]).ok


def test_ci_mode_reads_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert ci_mode()
    monkeypatch.setenv("CI", "1")
    assert not ci_mode()
    monkeypatch.delenv("CI")
    assert not ci_mode()


def test_write_new_refuses_under_ci(store: GoldenStore) -> None:
    scenario(store, "s")
    with pytest.raises(UpdateRefused, match=r"'s'.*CI=true"):
        store.write_new("s", trace(), ci=True)
    assert not store.paths("s").trace_new.exists()
    assert store.pending() == []


def test_write_new_then_pending_then_discard(store: GoldenStore) -> None:
    scenario(store, "s")
    scenario(store, "t")
    written = store.write_new("s", trace(), ci=False)
    assert written == store.paths("s").trace_new
    store.cassettes_dir.mkdir()
    store.paths("t").cassette_new.write_text("interactions: []\n")
    assert store.pending() == ["s", "t"]
    assert store.discard("s") == [store.paths("s").trace_new]
    assert store.discard("t") == [store.paths("t").cassette_new]
    assert store.pending() == []


def test_write_golden_writes_trace_audit_and_moves_cassette(store: GoldenStore) -> None:
    scenario(store, "s")
    recorded = store.root / "recording.yaml"
    recorded.write_text("interactions: []\n")
    store.write_new("s", trace(1), ci=False)  # stale: the new recording supersedes it
    data = trace(2)
    store.write_golden("s", data, json.loads(data)["audit"], cassette_new=recorded)
    paths = store.paths("s")
    assert store.read_trace_bytes("s") == data
    assert paths.audit.read_bytes() == audit_jsonl_bytes(audit(2))
    assert paths.cassette.read_text() == "interactions: []\n"
    assert not recorded.exists()
    assert not paths.trace_new.exists()
    # No temp files left behind by the atomic writes.
    assert sorted(p.name for p in paths.folder.iterdir()) == [
        "audit.jsonl",
        "scenario.yaml",
        "trace.json",
    ]


def test_write_golden_with_missing_cassette_fails_before_writing(store: GoldenStore) -> None:
    scenario(store, "s")
    with pytest.raises(GoldenMissing, match="recording did not finish"):
        store.write_golden("s", trace(), [], cassette_new=store.root / "nope.yaml")
    assert store.read_trace_bytes("s") is None


def test_promote_moves_new_files_and_rederives_audit(store: GoldenStore) -> None:
    scenario(store, "s")
    store.write_golden("s", trace(1), audit(1), cassette_new=None)
    store.cassettes_dir.mkdir()
    paths = store.paths("s")
    paths.cassette.write_text("old\n")
    paths.cassette_new.write_text("new\n")
    store.write_new("s", trace(3), ci=False)
    store.promote("s")
    assert store.read_trace_bytes("s") == trace(3)
    assert paths.audit.read_bytes() == audit_jsonl_bytes(audit(3))
    assert paths.cassette.read_text() == "new\n"
    assert not paths.trace_new.exists()
    assert not paths.cassette_new.exists()
    assert store.pending() == []


def test_promote_of_an_unreadable_trace_moves_nothing(store: GoldenStore) -> None:
    scenario(store, "s")
    store.write_golden("s", trace(1), audit(1), cassette_new=None)
    store.cassettes_dir.mkdir()
    paths = store.paths("s")
    paths.cassette_new.write_text("new\n")
    store.write_new("s", b"not json", ci=False)
    with pytest.raises(ScenarioError, match="not valid JSON"):
        store.promote("s")
    assert paths.cassette_new.exists() and not paths.cassette.exists()
    assert store.read_trace_bytes("s") == trace(1)


def test_promote_without_pending_update_says_so(store: GoldenStore) -> None:
    scenario(store, "s")
    with pytest.raises(GoldenMissing, match="no pending update"):
        store.promote("s")


def test_unreferenced_finds_strays(store: GoldenStore) -> None:
    scenario(store, "kept")
    store.write_golden("kept", trace(), audit(2), cassette_new=None)
    store.write_new("kept", trace(3), ci=False)
    (store.goldens_dir / "kept" / "notes.txt").write_text("stray\n")
    (store.goldens_dir / "kept" / ".gitkeep").write_text("")
    orphan = store.goldens_dir / "renamed_scenario"
    orphan.mkdir()
    (orphan / "trace.json.new").write_text("{}\n")
    store.keys_dir.mkdir()
    store.cassettes_dir.mkdir()
    (store.cassettes_dir / "kept.yaml").write_text("")
    (store.cassettes_dir / "kept.yaml.new").write_text("")
    (store.cassettes_dir / "gone.yaml").write_text("")
    (store.cassettes_dir / "gone.yaml.new").write_text("")
    found = [p.relative_to(store.root).as_posix() for p in store.unreferenced()]
    assert found == [
        "goldens/kept/notes.txt",
        "goldens/renamed_scenario",
        "cassettes/gone.yaml",
        "cassettes/gone.yaml.new",
    ]


def test_unreferenced_is_empty_for_a_clean_store(store: GoldenStore) -> None:
    assert store.unreferenced() == []
    scenario(store, "s")
    store.write_golden("s", trace(), audit(2), cassette_new=None)
    assert store.unreferenced() == []
