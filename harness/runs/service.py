"""Run use cases: create (with its first job), apply the human gate, and read a run back.

Each function is one unit of work: state change, transition row, audit entry and any job
commit together or not at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from harness.accounts import Principal, principal_of_key
from harness.audit import append_audit
from harness.canonical import digest
from harness.clock import iso
from harness.database.connect import unit_of_work
from harness.database.models import Approval, Artifact, Run, RunTransition, Step, Tenant
from harness.errors import (
    Forbidden,
    IllegalTransition,
    InjectionBlocked,
    InvalidRequest,
    NotFound,
    StaleApproval,
)
from harness.events import TransitionRecorded
from harness.jobs.queue import JobKind, enqueue
from harness.observability import RUN_TRANSITIONS, RUNS_CREATED
from harness.orchestrator.guard import GuardAction, UntrustedSource, inspect_untrusted
from harness.orchestrator.routing import TenantRouting, resolve_model, resolve_tools
from harness.policy import DEFAULT_RULES, PolicyEngine
from harness.runs.state import RunStatus, check_transition
from harness.runtime import Runtime

POLICY = PolicyEngine(DEFAULT_RULES)
# The pending action's arguments as shown to an approver (canonical JSON), capped so a large
# write cannot bloat every status read; the digest still covers the exact full arguments.
PREVIEW_CHARS = 2000


@dataclass(frozen=True)
class RunSpec:
    task: str
    model: str | None
    tools: list[str] | None


def authorize(
    principal: Principal, action: str, resource: str, *, policy: PolicyEngine = POLICY
) -> None:
    """The policy engine decides over all the principal's roles at once: any explicit deny wins."""
    decision = policy.decide_any_role(
        tenant=principal.tenant_id, roles=sorted(principal.roles), action=action, resource=resource
    )
    if not decision.allowed:
        raise Forbidden(f"key {principal.key_id} may not {action}", action=action)


def routing_for(tenant: Tenant) -> TenantRouting:
    r = tenant.routing
    return TenantRouting(
        allowed_models=frozenset(r["allowed_models"]),
        default_model=r["default_model"],
        allowed_tools=frozenset(r["allowed_tools"]),
    )


def transition(
    session: Session, rt: Runtime, run: Run, target: RunStatus, *, reason: str, actor: str
) -> None:
    """Move ``run`` along the table, persisting the transition and auditing it."""
    current = RunStatus(run.status)
    check_transition(current, target)
    seq = session.execute(
        select(func.count()).select_from(RunTransition).where(RunTransition.run_id == run.id)
    ).scalar_one()
    now = iso(rt.clock.now())
    session.add(
        RunTransition(
            run_id=run.id, seq=seq, from_status=current, to_status=target, reason=reason, at=now, actor=actor
        )
    )
    run.status = target
    run.updated_at = now
    session.flush()
    append_audit(
        session,
        rt,
        actor=actor,
        tenant=run.tenant_id,
        action="run.transition",
        target=f"run/{run.id}",
        payload={"from": str(current), "to": str(target), "reason": reason},
    )
    RUN_TRANSITIONS.labels(from_status=current, to_status=target).inc()
    rt.sink.emit(
        TransitionRecorded(
            run_id=run.id, seq=seq, from_status=current, to_status=target, reason=reason, actor=actor
        )
    )


def create_run(session: Session, rt: Runtime, principal: Principal, spec: RunSpec) -> Run:
    """Validate against the tenant's routing policy, then write the run and its first job."""
    authorize(principal, "run:create", f"tenant/{principal.tenant_id}/runs", policy=rt.policy)
    if len(spec.task) > rt.settings.max_task_chars:
        raise InvalidRequest(
            f"task is {len(spec.task)} characters; the limit is {rt.settings.max_task_chars}",
            field="task",
        )
    verdict = inspect_untrusted(spec.task, source=UntrustedSource.USER_TASK)
    if verdict.action == GuardAction.BLOCK:
        rules = ", ".join(sorted({f.rule for f in verdict.findings}))
        raise InjectionBlocked(f"the task was refused by the injection guard ({rules})", reason=rules)
    tenant = session.get(Tenant, principal.tenant_id)
    if tenant is None:  # a key whose tenant vanished is as good as unknown
        raise NotFound("tenant not found")
    policy = routing_for(tenant)
    model = resolve_model(spec.model, policy=policy)
    tools = list(resolve_tools(spec.tools, policy=policy))
    now = iso(rt.clock.now())
    run = Run(
        id=rt.ids.new("run"),
        tenant_id=tenant.id,
        submitted_by=principal.key_id,
        task=spec.task,
        model=model,
        tools=tools,
        seed=rt.settings.model_seed,
        status=RunStatus.PENDING,
        tokens_used=0,
        created_at=now,
        updated_at=now,
    )
    session.add(run)
    session.flush()
    append_audit(
        session,
        rt,
        actor=principal.key_id,
        tenant=tenant.id,
        action="run.created",
        target=f"run/{run.id}",
        payload={"model": model, "tools": tools, "task_sha256": digest(spec.task)},
    )
    enqueue(session, rt, kind=JobKind.EXECUTE_RUN, run_id=run.id, dedupe_key=f"{run.id}:start")
    RUNS_CREATED.labels(tenant=tenant.id).inc()
    return run


def load_run(session: Session, principal: Principal, run_id: str, *, for_update: bool = False) -> Run:
    """A run of the principal's own tenant; anything else is indistinguishable from absent (404)."""
    query = select(Run).where(Run.id == run_id, Run.tenant_id == principal.tenant_id)
    if for_update:
        query = query.with_for_update()
    run = session.execute(query).scalar_one_or_none()
    if run is None:
        raise NotFound(f"no run {run_id!r}")
    return run


def decide(
    rt: Runtime,
    principal: Principal,
    *,
    run_id: str,
    decision: str,
    reason: str,
    approval_id: str,
    args_sha256: str,
) -> dict[str, Any]:
    """The human gate: approve resumes the run through the queue; reject ends it REJECTED.

    The decision names what it decides (``approval_id`` + ``args_sha256`` as shown by
    ``GET /runs/{id}``); when the run now waits on another action, it is refused (409).
    """
    with unit_of_work(rt.sessions) as session:
        run = load_run(session, principal, run_id, for_update=True)
        authorize(
            principal, "approval:decide", f"tenant/{run.tenant_id}/runs/{run.id}", policy=rt.policy
        )
        # Four-eyes is about people: a second key of the submitter is still the submitter.
        if principal_of_key(session, run.submitted_by) == principal_of_key(session, principal.key_id):
            raise Forbidden("four-eyes rule: the submitter of a run cannot decide its approval")
        if run.status != RunStatus.AWAITING_APPROVAL:
            raise IllegalTransition(
                f"run {run.id} is {run.status}, not AWAITING_APPROVAL; nothing to {decision}",
                current=run.status,
            )
        approval = session.execute(
            select(Approval).where(Approval.run_id == run.id, Approval.status == "pending")
        ).scalar_one()
        if approval.id != approval_id or approval.args_sha256 != args_sha256:
            what = "approval id" if approval.id != approval_id else "args_sha256"
            raise StaleApproval(
                f"run {run.id} now waits on approval {approval.id} ({approval.action}, args_sha256"
                f" {approval.args_sha256}), not on what this decision names (its {what} differs);"
                f" reload GET /api/harness/runs/{run.id}, review the pending action, and decide again",
                reason="approval-id-mismatch" if what == "approval id" else "args-digest-mismatch",
            )
        approval.status = "approved" if decision == "approve" else "rejected"
        approval.decided_by = principal.key_id
        approval.decided_at = iso(rt.clock.now())
        approval.reason = reason
        append_audit(
            session,
            rt,
            actor=principal.key_id,
            tenant=run.tenant_id,
            action="approval.decided",
            target=f"run/{run.id}",
            payload={
                "approval": approval.id,
                "decision": approval.status,
                "reason": reason,
                "args_sha256": approval.args_sha256,
                "principal": principal_of_key(session, principal.key_id),
            },
        )
        if decision == "approve":
            transition(
                session, rt, run, RunStatus.APPROVED, reason=f"approved: {reason}", actor=principal.key_id
            )
            enqueue(
                session,
                rt,
                kind=JobKind.EXECUTE_RUN,
                run_id=run.id,
                dedupe_key=f"{run.id}:resume:{approval.id}",
            )
        else:
            transition(
                session, rt, run, RunStatus.REJECTED, reason=f"rejected: {reason}", actor=principal.key_id
            )
        return {
            "run_id": run.id,
            "status": run.status,
            "approval_id": approval.id,
            "decision": approval.status,
        }


def run_view(session: Session, run: Run) -> dict[str, Any]:
    """The status document: state, history, steps, pending approval and artifacts."""
    transitions = session.execute(
        select(RunTransition).where(RunTransition.run_id == run.id).order_by(RunTransition.seq)
    ).scalars()
    steps = session.execute(select(Step).where(Step.run_id == run.id).order_by(Step.seq)).scalars()
    approvals = session.execute(
        select(Approval).where(Approval.run_id == run.id).order_by(Approval.requested_at, Approval.id)
    ).scalars()
    artifacts = session.execute(
        select(Artifact).where(Artifact.run_id == run.id).order_by(Artifact.path)
    ).scalars()
    approval_list = [
        {
            "id": a.id,
            "action": a.action,
            "args": a.args,
            "args_sha256": a.args_sha256,
            "status": a.status,
            "requested_at": a.requested_at,
            "decided_by": a.decided_by,
            "decided_at": a.decided_at,
            "reason": a.reason,
        }
        for a in approvals
    ]
    return {
        "id": run.id,
        "status": run.status,
        "model": run.model,
        "tools": run.tools,
        "task": run.task,
        "error": run.error,
        "tokens_used": run.tokens_used,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "transitions": [
            {
                "seq": t.seq,
                "from": t.from_status,
                "to": t.to_status,
                "reason": t.reason,
                "at": t.at,
                "actor": t.actor,
            }
            for t in transitions
        ],
        "steps": [
            {"seq": s.seq, "kind": s.kind, "name": s.name, "outcome": s.outcome, "at": s.at} for s in steps
        ],
        "pending_approval": next(
            (pending_action(a) for a in approval_list if a["status"] == "pending"), None
        ),
        "approvals": approval_list,
        "artifacts": [
            {"path": a.path, "size": a.size, "sha256": a.sha256, "created_at": a.created_at}
            for a in artifacts
        ],
    }


def pending_action(approval: dict[str, Any]) -> dict[str, Any]:
    """What an approver is asked to decide: echo ``id`` and ``args_sha256`` back to decide it."""
    shown = json.dumps(approval["args"], ensure_ascii=False, sort_keys=True)
    return {
        **approval,
        "tool": approval["action"],
        "preview": shown[:PREVIEW_CHARS],
        "preview_truncated": len(shown) > PREVIEW_CHARS,
    }


def artifact_content(session: Session, rt: Runtime, run: Run, path: str) -> str:
    """An artifact's text; refuses one whose file no longer matches its row."""
    from pathlib import Path

    from harness.artifacts import verify_artifact
    from harness.errors import ArtifactTampered

    row = session.execute(
        select(Artifact).where(Artifact.run_id == run.id, Artifact.path == path)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"run {run.id} has no artifact {path!r}")
    root = (rt.settings.artifacts_dir / run.tenant_id / run.id).resolve()
    if not Path(row.storage_path).resolve().is_relative_to(root):
        # A row must never make the API serve a file outside its run's folder, digest or not.
        raise ArtifactTampered(
            f"artifact {path!r} of run {run.id} is outside the run's artifact folder; it is not served"
            " (report this: the artifact rows were altered)",
            reason="outside-artifact-folder",
        )
    if not verify_artifact(row):
        raise ArtifactTampered(
            f"artifact {path!r} of run {run.id} does not match its recorded digest (altered or missing"
            " after commit); it is not served (report this: check the artifact store)",
            reason="digest-mismatch",
        )
    return Path(row.storage_path).read_text(encoding="utf-8")
