"""Fixture factories: runs, steps, approvals and artifacts persisted through the ORM models.

``Factories(rt)`` builds valid rows with sensible defaults (every call is one unit of work and
returns the detached row) and the adversarial variants the security tests need: traversal
artifact paths, an oversized task, confusable model names, an approval left pending on a
terminal run, an artifact whose file no longer matches its row, a step whose output holds a
secret. Rows are written directly, bypassing the services, so the tests can check that the
*readers* (API, verifier, human gate) hold the line on data the writers would never produce.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select

from harness.accounts import Principal, create_tenant, issue_key
from harness.canonical import digest
from harness.clock import iso
from harness.database.connect import unit_of_work
from harness.database.models import Approval, Artifact, Run, Step, Tenant
from harness.runs.state import RunStatus
from harness.runtime import Runtime

Row = TypeVar("Row", Run, Step, Approval, Artifact)

# Artifact paths that must never leave a run's artifact root.
TRAVERSAL_PATHS = (
    "../escape.md",
    "../../../../etc/passwd",
    "/etc/passwd",
    "notes/../../escape.md",
    "notes/../../../other-tenant/run/report.md",
    "..\\..\\windows\\win.ini",
    "./../escape.md",
)

# Look like an allowed model ("sim-small") to a human; are not it to a computer.
CONFUSABLE_MODELS = (
    "sim-smаll",  # Cyrillic а (U+0430)
    "ѕim-small",  # Cyrillic ѕ (U+0455)
    "sim‐small",  # hyphen U+2010
    "sim-small\u200b",  # zero-width space
    "ｓｉｍ-ｓｍａｌｌ",  # fullwidth
    "sim-smal1",  # digit one for l
    "SIM-SMALL",
)

# Synthetic, never real: shapes the redactor knows.
SECRET_OUTPUT = {
    "content": "here is the key sk-proj-Zq3xT9vLm2Qw8Rt5Yu1Io4Pa7Sd0Fg6Hj",
    "env": "DATABASE_URL=postgresql://admin:hunter2-s3cr3t@db.internal:5432/prod",
    "aws": "AKIAIOSFODNN7EXAMPLE",
}


def oversized_task(rt: Runtime) -> str:
    """One character over the runtime's task limit."""
    return "x" * (rt.settings.max_task_chars + 1)


@dataclass
class Factories:
    """Builders bound to one runtime; ids come from a private counter, so they are stable per test."""

    rt: Runtime
    _n: itertools.count[int] = field(default_factory=itertools.count)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_f{next(self._n):05d}"

    def now(self) -> str:
        return iso(self.rt.clock.now())

    # --- accounts (through the real services: keys need their hash) -------------------------

    def principal(self, tenant_id: str = "acme", *, roles: tuple[str, ...] = ("submitter",)) -> Principal:
        """A fresh key in ``tenant_id`` (created on first use)."""
        with unit_of_work(self.rt.sessions) as session:
            exists = session.get(Tenant, tenant_id) is not None
        if not exists:
            create_tenant(self.rt, tenant_id=tenant_id, name=tenant_id)
        name = self._id("key")
        key = issue_key(self.rt, tenant_id=tenant_id, name=name, roles=list(roles))
        return Principal(key_id=key.key_id, tenant_id=tenant_id, roles=frozenset(key.roles), name=name)

    # --- valid rows -------------------------------------------------------------------------

    def run(
        self,
        submitter: Principal | None = None,
        *,
        status: RunStatus = RunStatus.PENDING,
        task: str = "summarise the workspace",
        model: str = "sim-small",
        tools: list[str] | None = None,
        error: str | None = None,
    ) -> Run:
        who = submitter or self.principal()
        now = self.now()
        row = Run(
            id=self._id("run"),
            tenant_id=who.tenant_id,
            submitted_by=who.key_id,
            task=task,
            model=model,
            tools=["list_files", "read_file", "write_artifact"] if tools is None else tools,
            seed=self.rt.settings.model_seed,
            status=str(status),
            error=error,
            tokens_used=0,
            created_at=now,
            updated_at=now,
        )
        return self._persist(row)

    def step(
        self,
        run: Run,
        *,
        seq: int | None = None,
        kind: str = "model_call",
        name: str = "sim-small",
        input: dict[str, Any] | None = None,
        output: dict[str, Any] | None = None,
        outcome: str = "ok",
    ) -> Step:
        if seq is None:
            with unit_of_work(self.rt.sessions) as session:
                seq = session.execute(
                    select(func.count()).select_from(Step).where(Step.run_id == run.id)
                ).scalar_one()
        return self._persist(
            Step(
                run_id=run.id,
                seq=seq,
                kind=kind,
                name=name,
                input=input or {"messages": 1},
                output=output or {"content": "Nothing to do."},
                outcome=outcome,
                at=self.now(),
            )
        )

    def approval(
        self,
        run: Run,
        *,
        status: str = "pending",
        action: str = "write_artifact",
        args: dict[str, Any] | None = None,
        decided_by: str | None = None,
    ) -> Approval:
        args = args if args is not None else {"path": "report.md", "content": "ok\n"}
        return self._persist(
            Approval(
                id=self._id("apr"),
                run_id=run.id,
                action=action,
                args=args,
                args_sha256=digest({"tool": action, "args": args}),
                tool_call_id=self._id("call"),
                status=status,
                requested_at=self.now(),
                decided_by=decided_by,
                decided_at=None if status == "pending" else self.now(),
            )
        )

    def artifact(
        self, run: Run, *, path: str = "report.md", content: str = "# Report\n\nTotal: 200\n"
    ) -> Artifact:
        """A file under the run's artifact root and a row whose size and digest match it."""
        data = content.encode("utf-8")
        target = self.rt.settings.artifacts_dir / run.tenant_id / run.id / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return self._artifact_row(run, path=path, data=data, storage_path=target)

    # --- adversarial variants ---------------------------------------------------------------

    def tampered_artifact(self, run: Run, *, path: str = "report.md") -> Artifact:
        """A committed artifact whose file was changed afterwards: same size, other bytes."""
        row = self.artifact(run, path=path, content="# Report\n\nTotal: 200\n")
        Path(row.storage_path).write_bytes(b"# Report\n\nTotal: 999\n")
        return row

    def missing_file_artifact(self, run: Run, *, path: str = "gone.md") -> Artifact:
        row = self.artifact(run, path=path)
        Path(row.storage_path).unlink()
        return row

    def escaped_artifact(self, run: Run, *, outside: Path, path: str = "../../../escape.md") -> Artifact:
        """A row whose path and storage path point outside the artifact root, at a file that
        matches its digest: only a containment check can refuse it."""
        data = b"not an artifact of this run\n"
        outside.parent.mkdir(parents=True, exist_ok=True)
        outside.write_bytes(data)
        return self._artifact_row(run, path=path, data=data, storage_path=outside)

    def terminal_run_with_pending_approval(
        self, submitter: Principal | None = None, *, status: RunStatus = RunStatus.SUCCEEDED
    ) -> tuple[Run, Approval]:
        """A run that already ended, with an approval row still 'pending' (as a bug might leave it)."""
        run = self.run(submitter, status=status)
        return run, self.approval(run)

    def secret_step(self, run: Run) -> Step:
        """A step whose stored output was never redacted."""
        return self.step(run, kind="tool_call", name="read_file", output=dict(SECRET_OUTPUT))

    # --- plumbing ---------------------------------------------------------------------------

    def _artifact_row(self, run: Run, *, path: str, data: bytes, storage_path: Path) -> Artifact:
        return self._persist(
            Artifact(
                id=self._id("art"),
                run_id=run.id,
                tenant_id=run.tenant_id,
                path=path,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                storage_path=str(storage_path),
                created_at=self.now(),
            )
        )

    def _persist(self, row: Row) -> Row:
        with unit_of_work(self.rt.sessions) as session:
            session.add(row)
            session.flush()
        return row
