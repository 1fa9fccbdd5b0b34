"""``harness-replay capture RUN_ID --name NAME``: turn a finished run in a harness database into a golden.

The run's rows become a scenario: its tenant and the keys that acted (by name and roles), the
workspace files its tools read (redacted), the model's answers as the scenario's model script,
and the API steps it took (submit, each approval decision preceded by the status its approver
saw, status, each artifact). The scenario is written to ``goldens/NAME/scenario.yaml`` and
recorded into ``.new`` files, so it reaches the goldens only through review, like any other change.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from harness.database.models import ApiKey, Approval, Artifact, Run, Step, Tenant
from harness.redaction import redact, redact_data
from replay.errors import ReplayError, ScenarioError
from replay.store import GoldenStore

__all__ = ["FINISHED", "capture_scenario", "write_captured"]

FINISHED: Final = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "CANCELLED"})


def capture_scenario(
    database_url: str, run_id: str, *, files_dir: Path, description: str | None = None
) -> dict[str, Any]:
    """The scenario (as plain data) that reproduces run ``run_id`` of the database at ``database_url``."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            return _scenario(session, run_id, files_dir=files_dir, description=description)
    finally:
        engine.dispose()


def _scenario(
    session: Session, run_id: str, *, files_dir: Path, description: str | None
) -> dict[str, Any]:
    run = session.get(Run, run_id)
    if run is None:
        raise ReplayError(
            f"no run {run_id!r} in that database; check the run id (GET /api/harness/runs/{{id}} shows it)"
        )
    if run.status not in FINISHED:
        raise ReplayError(
            f"run {run_id} is {run.status}, not finished; capture it once it ends "
            f"({', '.join(sorted(FINISHED))})"
        )
    tenant = session.get(Tenant, run.tenant_id)
    keys = {
        k.id: k
        for k in session.execute(select(ApiKey).where(ApiKey.tenant_id == run.tenant_id)).scalars()
    }
    submitter = keys.get(run.submitted_by)
    if tenant is None or submitter is None:
        raise ReplayError(f"run {run_id}: its tenant or submitting key is missing from the database")
    steps = list(session.execute(select(Step).where(Step.run_id == run_id).order_by(Step.seq)).scalars())
    approvals = list(
        session.execute(
            select(Approval)
            .where(Approval.run_id == run_id)
            .order_by(Approval.requested_at, Approval.id)
        ).scalars()
    )
    artifacts = list(
        session.execute(
            select(Artifact).where(Artifact.run_id == run_id).order_by(Artifact.path)
        ).scalars()
    )
    acting = {submitter.id} | {a.decided_by for a in approvals if a.decided_by}
    names = {kid: _key_name(keys[kid]) for kid in sorted(acting) if kid in keys}
    body: dict[str, Any] = {"task": run.task}
    api_steps: list[dict[str, Any]] = [
        {"op": "run", "as": names[submitter.id], "body": body, "save": "r1", "expect": 202}
    ]
    for approval in approvals:
        if approval.status not in {"approved", "rejected"} or approval.decided_by not in names:
            continue
        # A decision names the pending action (approval_id + args_sha256) that the last status
        # step showed, as a real approver looks before deciding; without it the API answers 422.
        api_steps.append({"op": "status", "as": names[approval.decided_by], "run": "r1", "expect": 200})
        api_steps.append(
            {
                "op": "approve" if approval.status == "approved" else "reject",
                "as": names[approval.decided_by],
                "run": "r1",
                "reason": approval.reason or "reviewed",
                "expect": 200,
            }
        )
    api_steps.append({"op": "status", "as": names[submitter.id], "run": "r1", "expect": 200})
    api_steps += [
        {"op": "artifact", "as": names[submitter.id], "run": "r1", "artifact": a.path, "expect": 200}
        for a in artifacts
    ]
    start = datetime.fromisoformat(run.created_at.replace("Z", "+00:00")).astimezone(UTC) - timedelta(
        seconds=1
    )
    return {
        "format_version": 1,
        "description": description or f"Captured from run {run_id}: {redact(run.task)[:100]}",
        "seed": run.seed,
        "start_time": start.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "tenants": [
            {
                "id": tenant.id,
                "name": tenant.name,
                **({"routing": tenant.routing} if tenant.routing else {}),
                "keys": {names[kid]: list(keys[kid].roles) for kid in names},
                "files": _files_read(steps, files_dir / tenant.id),
            }
        ],
        "model_script": {
            "format_version": 1,
            "conversations": [
                {"name": "captured", "match": {"user_contains": run.task}, "turns": _turns(steps)}
            ],
        },
        "steps": api_steps,
    }


def _key_name(key: ApiKey) -> str:
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in key.name) or "key"
    return f"{name}_{key.id[-4:]}" if name == "key" else name


def _turns(steps: list[Step]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for step in steps:
        if step.kind != "model_call":
            continue
        output = step.output or {}
        calls = output.get("tool_calls") or []
        if calls:
            turns.append(
                {
                    "tool_calls": [
                        {
                            "name": c["function"]["name"],
                            "arguments": _arguments(c["function"].get("arguments")),
                        }
                        for c in calls
                    ]
                }
            )
        else:
            turns.append({"content": output.get("content") or ""})
    if not turns:
        raise ScenarioError("the run made no model call: there is nothing to capture as a model script")
    return turns


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return redact_data(json.loads(raw))
        except ValueError:
            return {}
    return redact_data(raw or {})


def _files_read(steps: list[Step], workspace: Path) -> dict[str, str]:
    """The workspace files the run's tools read, redacted; a file gone since is left out."""
    files: dict[str, str] = {}
    root = workspace.resolve()
    for step in steps:
        if step.kind != "tool_call" or step.name != "read_file" or step.outcome != "ok":
            continue
        rel = (step.input or {}).get("args", {}).get("path")
        if not isinstance(rel, str):
            continue
        path = (root / rel).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            continue
        files[rel] = redact(path.read_text(encoding="utf-8", errors="replace"))
    return files


def write_captured(store: GoldenStore, name: str, scenario: dict[str, Any]) -> Path:
    """Write ``goldens/NAME/scenario.yaml`` (refusing to overwrite an existing golden)."""
    paths = store.paths(name)
    if paths.folder.exists():
        raise ScenarioError(f"goldens/{name} already exists; capture under a new --name")
    paths.folder.mkdir(parents=True)
    header = "# Captured by `harness-replay capture`; review it like any golden change.\n"
    text = yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True, width=100)
    paths.scenario.write_text(header + text, encoding="utf-8")
    return paths.scenario
