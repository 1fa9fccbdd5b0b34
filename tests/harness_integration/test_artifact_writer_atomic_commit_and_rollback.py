"""An artifact write partially succeeds, then fails: no row, no file, and no SUCCEEDED run.

Test plan scenario "artifact write partially succeeds then fails". Faults are injected at
each point of the commit: the temp file's fsync, the rename, the directory fsync after the
rename, and the database writes that follow the landed file (artifact row, its audit entry,
the tool step). Whatever fails, no file may outlive its row, no temp file may remain, and a
redelivery finishes the write once. A file damaged after commit is caught on read.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from harness.artifacts import verify_artifact
from harness.database.connect import unit_of_work
from harness.database.models import Artifact, AuditEntry, Run, SideEffect, Step
from tests.support.api import World, world
from tests.support.faults import fail_statements, frozen_clock, param_is, params_mention

pytestmark = [pytest.mark.tier1]

REPORT = "# Quarterly report\n\nNorth: 120\nSouth: 80\nTotal: 200\n"


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url) as it:
        yield it


def _approved_run(w: World) -> str:
    run_id = w.post("run", "alice", {"task": "Write the quarterly report from sales.csv"}).json()["run_id"]
    w.drain()
    decided = w.post("approve", "bob", w.decision(run_id, "approve", "ok"))
    assert decided.status_code == 200, decided.text
    return run_id


def _run_dir(w: World, run_id: str) -> Path:
    return w.rt.settings.artifacts_dir / "acme" / run_id


def _files(w: World, run_id: str) -> list[str]:
    root = _run_dir(w, run_id)
    return sorted(p.name for p in root.rglob("*")) if root.exists() else []


def _assert_nothing_committed(w: World, run_id: str) -> None:
    with unit_of_work(w.rt.sessions) as s:
        run = s.get_one(Run, run_id)
        rows = s.execute(select(func.count()).select_from(Artifact)).scalar_one()
        effects = s.execute(select(func.count()).select_from(SideEffect)).scalar_one()
        committed = s.execute(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "artifact.committed")
        ).scalar_one()
        writes = s.execute(
            select(func.count()).select_from(Step).where(Step.run_id == run_id, Step.name == "write_artifact")
        ).scalar_one()
    assert run.status != "SUCCEEDED"
    assert (rows, effects, committed, writes) == (0, 0, 0, 0)
    assert _files(w, run_id) == [], "a file (or temp file) outlived the rolled-back commit"


def _assert_committed_once(w: World, run_id: str) -> None:
    with unit_of_work(w.rt.sessions) as s:
        run = s.get_one(Run, run_id)
        rows = list(s.execute(select(Artifact)).scalars())
        effects = s.execute(select(func.count()).select_from(SideEffect)).scalar_one()
    assert run.status == "SUCCEEDED", run.error
    assert [(r.path, r.sha256) for r in rows] == [("report.md", hashlib.sha256(REPORT.encode()).hexdigest())]
    assert effects == 1
    assert verify_artifact(rows[0])
    assert _files(w, run_id) == ["report.md"]


FsFault = Callable[[pytest.MonkeyPatch, Path], None]


def _fail_fsync(nth: int) -> FsFault:
    """The ``nth`` fsync inside the artifact root fails (1: the temp file, 2: the directory)."""

    def install(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        real, seen = os.fsync, []

        def fsync(fd: int) -> None:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(root)):
                seen.append(fd)
                if len(seen) == nth:
                    raise OSError(errno.EIO, "injected fsync failure")
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)

    return install


def _fail_replace(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    real = os.replace

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if str(dst).startswith(str(root)):
            raise OSError(errno.ENOSPC, "injected: no space left on device")
        real(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


FS_FAULTS = [
    pytest.param(_fail_fsync(1), id="temp-file-fsync"),
    pytest.param(_fail_replace, id="rename"),
    pytest.param(_fail_fsync(2), id="directory-fsync-after-rename"),
]


@pytest.mark.parametrize("fault", FS_FAULTS)
def test_filesystem_failure_mid_commit_leaves_no_file_and_redelivery_writes_once(
    w: World, monkeypatch: pytest.MonkeyPatch, fault: FsFault
) -> None:
    with frozen_clock() as clock:
        run_id = _approved_run(w)
        with monkeypatch.context() as patch:
            fault(patch, w.rt.settings.artifacts_dir.resolve())
            w.drain()

        _assert_nothing_committed(w, run_id)

        clock.tick(timedelta(minutes=5))
        w.drain()
    _assert_committed_once(w, run_id)


DB_FAULTS = [
    pytest.param("INSERT INTO artifacts", None, id="artifact-row"),
    pytest.param("INSERT INTO audit_entries", params_mention("artifact.committed"), id="audit-entry"),
    pytest.param("INSERT INTO steps", param_is("name", 3, "write_artifact"), id="tool-step"),
]


@pytest.mark.parametrize(("statement", "when"), DB_FAULTS)
def test_db_failure_after_the_file_landed_removes_the_file(
    w: World, statement: str, when: Callable[[Any], bool] | None
) -> None:
    with frozen_clock() as clock:
        run_id = _approved_run(w)
        with fail_statements(w.rt.engine, statement, when=when, times=1) as fault:
            w.drain()
        assert len(fault.failed) == 1

        _assert_nothing_committed(w, run_id)

        clock.tick(timedelta(minutes=5))
        w.drain()
    _assert_committed_once(w, run_id)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:10]), id="truncated"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes().replace(b"200", b"999")), id="same-size-edit"),
        pytest.param(lambda p: p.unlink(), id="deleted"),
    ],
)
def test_artifact_damaged_after_commit_is_detected_and_not_served(
    w: World, damage: Callable[[Path], None]
) -> None:
    run_id = _approved_run(w)
    w.drain()
    _assert_committed_once(w, run_id)
    path = _run_dir(w, run_id) / "report.md"

    damage(path)

    with unit_of_work(w.rt.sessions) as s:
        row = s.execute(select(Artifact).where(Artifact.run_id == run_id)).scalar_one()
    assert not verify_artifact(row)
    resp = w.get(f"runs/{run_id}/artifacts/report.md", "alice")
    assert resp.status_code == 409, resp.text  # a tampered artifact is a conflict, not a server crash
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["type"].endswith("/artifact-tampered")
    assert "does not match its recorded digest" in body["detail"]
    assert "North" not in resp.text and "999" not in resp.text  # none of the bytes
