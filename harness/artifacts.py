"""Atomic artifact commit: temp file + fsync + rename, and the DB row in the caller's transaction.

If the transaction rolls back after the file landed, :func:`discard` removes it, so a run is
never SUCCEEDED with a missing file and no file outlives its row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

from harness.clock import iso
from harness.database.models import Artifact
from harness.durable import write_atomic
from harness.errors import ArtifactError
from harness.events import ArtifactCommitted
from harness.redaction import redact
from harness.runtime import Runtime
from harness.tools.sandbox import Workspace

_UNCOMMITTED = "harness.artifacts.uncommitted"


@event.listens_for(Session, "after_commit")
def _files_committed(session: Session) -> None:
    session.info.pop(_UNCOMMITTED, None)


@event.listens_for(Session, "after_soft_rollback")
def _rollback_files(session: Session, _previous: object) -> None:
    # The rows are gone, so their files go too: no artifact outlives its row.
    for path in session.info.pop(_UNCOMMITTED, []):
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class CommittedArtifact:
    path: str
    size: int
    sha256: str
    storage_path: Path


def artifact_root(rt: Runtime, *, tenant_id: str, run_id: str) -> Path:
    root = rt.settings.artifacts_dir / tenant_id / run_id
    root.mkdir(parents=True, exist_ok=True)
    return root


def commit_artifact(
    session: Session, rt: Runtime, *, tenant_id: str, run_id: str, path: str, content: str
) -> CommittedArtifact:
    """Redact, write atomically inside the run's artifact root, and add the row to ``session``."""
    workspace = Workspace(artifact_root(rt, tenant_id=tenant_id, run_id=run_id))
    target = workspace.path_for_write(path)
    data = redact(content).encode("utf-8")
    if target.exists():
        # Another artifact (committed, with its row) owns this file: never overwrite it.
        raise ArtifactError(f"artifact {path!r} already exists for run {run_id}", path=path)
    # Registered before the write: whatever fails from here to COMMIT, the rollback removes the
    # file with its row.
    session.info.setdefault(_UNCOMMITTED, []).append(target)
    try:
        write_atomic(target, data)
    except OSError as exc:
        raise ArtifactError(f"could not write artifact {path!r}: {exc.strerror}", path=path) from exc
    digest = hashlib.sha256(data).hexdigest()
    session.add(
        Artifact(
            id=rt.ids.new("art"),
            run_id=run_id,
            tenant_id=tenant_id,
            path=path,
            size=len(data),
            sha256=digest,
            storage_path=str(target),
            created_at=iso(rt.clock.now()),
        )
    )
    session.flush()
    rt.sink.emit(ArtifactCommitted(run_id=run_id, path=path, size=len(data), sha256=digest))
    return CommittedArtifact(path=path, size=len(data), sha256=digest, storage_path=target)


def discard(artifact: CommittedArtifact) -> None:
    """Compensate a rolled-back commit: the file goes with its row."""
    artifact.storage_path.unlink(missing_ok=True)


def verify_artifact(row: Artifact) -> bool:
    """True when the stored file exists and matches the row's size and digest."""
    target = Path(row.storage_path)
    if not target.is_file():
        return False
    data = target.read_bytes()
    return len(data) == row.size and hashlib.sha256(data).hexdigest() == row.sha256
