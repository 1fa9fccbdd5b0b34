"""The step loop: model call → tools → (approval gate) → ... → SUCCEEDED or FAILED.

The conversation is rebuilt from persisted steps on every entry, so a run resumes after
approval (or after a crashed worker) from the database alone. Each step is its own unit of
work; the model is never called inside a transaction.
"""

from __future__ import annotations

import json
import math
import shutil
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from harness import artifacts
from harness.audit import append_audit
from harness.canonical import digest, sha256_hex
from harness.clock import iso
from harness.database.connect import unit_of_work
from harness.database.models import Approval, Run, SideEffect, Step, Tenant
from harness.errors import (
    BudgetExceeded,
    HarnessError,
    InvalidRequest,
    NotFound,
    PolicyViolation,
    ProviderError,
)
from harness.events import ModelAnswered, PromptSent, RetryScheduled, ToolCalled
from harness.observability import BUDGET_REJECTIONS, GUARD_DECISIONS, get_logger, span
from harness.orchestrator import prompts
from harness.providers.base import ChatRequest, ChatResponse
from harness.providers.resilience import CircuitBreaker, RetryPolicy, call_with_resilience
from harness.providers.routed import route_clients
from harness.redaction import redact, redact_data
from harness.retrieval import retrieve
from harness.runs.service import transition
from harness.runs.state import TERMINAL, RunStatus
from harness.runtime import Runtime
from harness.secret_shape import redact_tool_call
from harness.tools.registry import TOOLS, check_args, run_read_only
from harness.tools.sandbox import Workspace
from harness.tools.writes import audited_args, check_write

log = get_logger(__name__)
ACTOR = "orchestrator"


def execute_run(rt: Runtime, run_id: str) -> RunStatus:
    """Advance one run as far as it can go; returns the status it stopped in."""
    with unit_of_work(rt.sessions) as session:
        run = session.execute(select(Run).where(Run.id == run_id).with_for_update()).scalar_one()
        status = RunStatus(run.status)
        if status in TERMINAL or status == RunStatus.AWAITING_APPROVAL:
            return status  # a redelivered or stale job: nothing to do
        if status != RunStatus.RUNNING:  # RUNNING: a worker died mid-run; pick up from the last step
            reason = "worker started the run" if status == RunStatus.PENDING else "resumed after approval"
            transition(session, rt, run, RunStatus.RUNNING, reason=reason, actor=ACTOR)
        tenant_id = run.tenant_id
    with span("orchestrator.run", **{"run.id": run_id, "tenant.id": tenant_id}):
        try:
            return _loop(rt, run_id)
        except (ProviderError, PolicyViolation, InvalidRequest) as exc:
            return _fail(rt, run_id, exc)


def _fail(rt: Runtime, run_id: str, exc: HarnessError) -> RunStatus:
    with unit_of_work(rt.sessions) as session:
        run = session.get_one(Run, run_id)
        run.error = redact(f"{exc.code}: {exc.message}")
        transition(session, rt, run, RunStatus.FAILED, reason=run.error, actor=ACTOR)
    log.warning("run failed", run_id=run_id, error=exc.code)
    return RunStatus.FAILED


def workspace_for(rt: Runtime, run: Run) -> Workspace:
    """The run's private workspace, seeded once from the tenant's files."""
    root = rt.settings.workspaces_dir / run.id
    if not root.exists():
        source = rt.settings.tenant_files_dir / run.tenant_id
        if source.is_dir():
            shutil.copytree(source, root, symlinks=True)
        else:
            root.mkdir(parents=True)
    return Workspace(root)


def _next_seq(session: Session, run_id: str) -> int:
    return int(
        session.execute(select(func.count()).select_from(Step).where(Step.run_id == run_id)).scalar_one()
    )


def _conversation(
    session: Session, rt: Runtime, run: Run
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rebuild the messages (and the guard decisions of the opening prompt) from persisted rows."""
    tenant = session.get_one(Tenant, run.tenant_id)
    documents = retrieve(session, tenant_id=run.tenant_id, query=run.task, top_k=rt.settings.retrieval_top_k)
    opening = prompts.assemble(tenant_name=tenant.name, task=run.task, documents=documents, tools=run.tools)
    messages = list(opening.messages)
    steps = session.execute(select(Step).where(Step.run_id == run.id).order_by(Step.seq)).scalars()
    for step in steps:
        if step.kind == "model_call":
            msg: dict[str, Any] = {"role": "assistant", "content": step.output.get("content")}
            if step.output.get("tool_calls"):
                msg["tool_calls"] = [_wire_call(c) for c in step.output["tool_calls"]]
            messages.append(msg)
        else:
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": step.input["tool_call_id"],
                    "content": step.output["content"],
                }
            )
    return messages, [v.to_trace() for v in opening.verdicts]


def _wire_call(call: dict[str, Any]) -> dict[str, Any]:
    """A stored tool call as the provider sees it again: our id, never our bookkeeping fields."""
    return {"id": call["id"], "type": call.get("type", "function"), "function": call["function"]}


def _tracked_calls(
    session: Session, rt: Runtime, run_id: str, answer: ChatResponse
) -> list[dict[str, Any]]:
    """Give every tool call our own id (seeded ids seam); a model id seen before in this run is a
    duplicate, kept (so it is refused and audited) but never mistaken for the earlier call."""
    seen: set[str] = set()
    for output in session.execute(
        select(Step.output).where(Step.run_id == run_id, Step.kind == "model_call")
    ).scalars():
        seen.update(str(c.get("model_id", c.get("id"))) for c in output.get("tool_calls") or [])
    tracked = []
    for call in answer.tool_calls:
        entry = {**call.to_message(), "id": rt.ids.new("call"), "model_id": call.id}
        if call.id in seen:
            entry["duplicate_model_id"] = True
        seen.add(call.id)
        tracked.append(entry)
    return tracked


def _stored_call(session: Session, run_id: str, call_id: str) -> dict[str, Any]:
    """The tool call as persisted (with our bookkeeping fields), by our id."""
    for output in session.execute(
        select(Step.output).where(Step.run_id == run_id, Step.kind == "model_call")
    ).scalars():
        for stored in output.get("tool_calls") or []:
            if stored.get("id") == call_id:
                return dict(stored)
    return {}


def _pending_tool_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls of the last assistant message that have no tool answer yet."""
    answered = {m["tool_call_id"] for m in messages if m["role"] == "tool"}
    for msg in reversed(messages):
        if msg["role"] == "assistant":
            return [c for c in msg.get("tool_calls") or [] if c["id"] not in answered]
    return []


def _estimate_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    chars = len(json.dumps(messages, ensure_ascii=False)) + len(json.dumps(tools))
    return math.ceil(chars / 4)


def _loop(rt: Runtime, run_id: str) -> RunStatus:
    model_calls = 0
    while True:
        with unit_of_work(rt.sessions) as session:
            run = session.get_one(Run, run_id)
            messages, guard = _conversation(session, rt, run)
            pending = _pending_tool_calls(messages)
            if pending:
                name = pending[0]["function"].get("name")
                with span("tool.call", **{"tool.name": name, "run.id": run.id, "tenant.id": run.tenant_id}):
                    stopped = _run_tools(session, rt, run, pending[0])
                if stopped is not None:
                    return stopped
                continue
            if messages[-1]["role"] == "assistant":
                return _finish(session, rt, run)
            model_calls = int(
                session.execute(
                    select(func.count())
                    .select_from(Step)
                    .where(Step.run_id == run.id, Step.kind == "model_call")
                ).scalar_one()
            )
            if model_calls >= rt.settings.max_steps:
                raise PolicyViolation(f"step limit of {rt.settings.max_steps} model calls reached")
            tools = [TOOLS[name].to_openai() for name in run.tools]
            estimate = _estimate_tokens(messages, tools)
            if run.tokens_used + estimate > rt.settings.token_budget:
                BUDGET_REJECTIONS.inc()
                raise BudgetExceeded(
                    f"token budget exhausted: {run.tokens_used} used + ~{estimate} needed "
                    f"> {rt.settings.token_budget}"
                )
            # What is sent is exactly what is stored (steps.input) and goldened: redacted.
            request = ChatRequest(
                model=run.model, messages=redact_data(messages), tools=tools, temperature=0, seed=run.seed
            )
            tenant_id, call_no = run.tenant_id, model_calls
            routing = dict(session.get_one(Tenant, tenant_id).routing)
            expected_seq = _next_seq(session, run_id)
        provider, answer = _call_model(rt, run_id, call_no, request, guard if call_no == 0 else [], routing)
        with unit_of_work(rt.sessions) as session:
            run = session.execute(select(Run).where(Run.id == run_id).with_for_update()).scalar_one()
            if run.status != RunStatus.RUNNING or _next_seq(session, run_id) != expected_seq:
                # Our lease expired while we waited on the model and another worker advanced the
                # run: its steps stand, and this answer is dropped rather than appended twice.
                log.warning("run advanced by another worker; answer dropped", run_id=run_id)
                return RunStatus(run.status)
            run.tokens_used += answer.usage.get("total_tokens", 0)
            output = redact_data(
                {
                    "content": answer.content,
                    # our own ids; a bare secret as an argument value is redacted before it is
                    # stored and echoed back to the provider in the next prompt
                    "tool_calls": [redact_tool_call(c) for c in _tracked_calls(session, rt, run_id, answer)],
                    "finish_reason": answer.finish_reason,
                    "provider": provider,
                }
            )
            session.add(
                Step(
                    run_id=run_id,
                    seq=_next_seq(session, run_id),
                    kind="model_call",
                    name=run.model,
                    input=redact_data(
                        {
                            "messages": request.messages,
                            "tools": [t["function"]["name"] for t in tools],
                            "temperature": 0,
                            "seed": run.seed,
                        }
                    ),
                    output=output,
                    outcome="ok",
                    at=iso(rt.clock.now()),
                )
            )
            append_audit(
                session,
                rt,
                actor=ACTOR,
                tenant=tenant_id,
                action="model.called",
                target=f"run/{run_id}",
                payload={
                    "provider": provider,
                    "model": run.model,
                    "call": call_no,
                    "tool_calls": [c.name for c in answer.tool_calls],
                    "usage": answer.usage,
                },
            )


def _call_model(
    rt: Runtime,
    run_id: str,
    call_no: int,
    request: ChatRequest,
    guard: list[dict[str, Any]],
    routing: dict[str, Any],
) -> tuple[str, ChatResponse]:
    # The tenant's route (primary, then fallbacks) becomes one resilient call; every guardrail
    # sits around that call, so whichever provider answers passes the same checks.
    providers = route_clients(rt.providers, routing)
    for verdict in guard:
        GUARD_DECISIONS.labels(source=verdict["source"], action=verdict["action"]).inc()
    rt.sink.emit(
        PromptSent(
            run_id=run_id,
            call=call_no,
            provider=providers[0].name,
            model=request.model,
            temperature=request.temperature,
            seed=request.seed,
            messages=request.messages,  # redacted before the request was built: sent == traced
            tools=request.tools,
            guard=guard,
        )
    )

    def on_retry(provider: str, attempt: int, error: str, sleep: float) -> None:
        rt.sink.emit(
            RetryScheduled(
                run_id=run_id,
                call=call_no,
                provider=provider,
                attempt=attempt,
                error=redact(error),
                sleep_seconds=sleep,
            )
        )

    provider, answer = call_with_resilience(
        request,
        providers=providers,
        breakers=rt.breakers,
        policy=RetryPolicy(
            rt.settings.retry_max_attempts, rt.settings.retry_base_delay, rt.settings.retry_max_delay
        ),
        sleeper=rt.sleeper,
        rng=rt.ids.rng_for(f"{run_id}:{call_no}"),
        on_retry=on_retry,
        make_breaker=lambda: CircuitBreaker(
            clock=rt.clock,
            threshold=rt.settings.breaker_failure_threshold,
            reset_seconds=rt.settings.breaker_reset_seconds,
        ),
    )
    rt.sink.emit(
        ModelAnswered(
            run_id=run_id,
            call=call_no,
            provider=provider,
            content=redact(answer.content or "") or None,
            tool_calls=[redact_data(redact_tool_call(c.to_message())) for c in answer.tool_calls],
            usage=answer.usage,
        )
    )
    return provider, answer


def _run_tools(session: Session, rt: Runtime, run: Run, call: dict[str, Any]) -> RunStatus | None:
    """Execute (or gate) one pending tool call; returns a status when the loop must stop.

    Every refusal (unknown or ungranted tool, duplicate call id, bad arguments, a path the sandbox
    refuses, an oversized or conflicting write) is one ``tool.refused`` audit entry of one shape,
    and a ``refused`` step the model is told about; nothing is ever silently dropped.
    """
    name = call["function"]["name"]
    raw_args = call["function"].get("arguments") or "{}"
    try:
        args: Any = json.loads(raw_args)
    except json.JSONDecodeError:
        args = raw_args
    spec = TOOLS.get(name)
    outcome, result = "ok", ""
    tracked = _stored_call(session, run.id, call["id"])
    try:
        if tracked.get("duplicate_model_id"):
            raise PolicyViolation(
                f"tool call id {tracked.get('model_id')!r} was already used in this run;"
                " each call needs a new id",
                reason="duplicate-call-id",
            )
        if spec is None:
            raise PolicyViolation(
                f"tool {name!r} is not available to this run (no such tool)", reason="unknown-tool"
            )
        if name not in run.tools:
            raise PolicyViolation(f"tool {name!r} is not available to this run", reason="tool-not-granted")
        try:
            args = check_args(spec, args)
        except InvalidRequest as exc:
            raise PolicyViolation(exc.message, reason="bad-arguments") from exc
        if spec.requires_approval:
            gated = _gated_side_effect(session, rt, run, tool_call_id=call["id"], name=name, args=args)
            if gated is None:
                return RunStatus.AWAITING_APPROVAL
            result = gated
        else:
            result = run_read_only(
                workspace_for(rt, run), name, args, max_chars=rt.settings.max_tool_result_chars
            )
    except PolicyViolation as exc:
        outcome, result = "refused", f"refused: {exc.message}"
        log.warning("tool refused", reason_code=exc.details.get("reason", exc.code), tool=name, run_id=run.id)
        append_audit(
            session,
            rt,
            actor=ACTOR,
            tenant=run.tenant_id,
            action="tool.refused",
            target=f"run/{run.id}",
            payload={
                "tool": name,
                "call": call["id"],
                "args": audited_args(args),
                "reason": exc.details.get("reason", exc.code),
            },
        )
    except (InvalidRequest, NotFound) as exc:  # a missing file or a directory: tell the model
        outcome, result = "error", f"error: {exc.message}"
    content, verdict = prompts.guard_tool_result(redact(result))
    safe_args = redact_data(args if isinstance(args, dict) else {"raw": str(args)})
    seq = _next_seq(session, run.id)
    session.add(
        Step(
            run_id=run.id,
            seq=seq,
            kind="tool_call",
            name=name,
            input={"tool_call_id": call["id"], "name": name, "args": safe_args},
            output={"content": content, "guard": verdict.to_trace()},
            outcome=outcome,
            at=iso(rt.clock.now()),
        )
    )
    rt.sink.emit(
        ToolCalled(
            run_id=run.id,
            seq=seq,
            name=name,
            args=safe_args,
            outcome=outcome,
            result_sha256=sha256_hex(content.encode()),
        )
    )
    return None


def _gated_side_effect(
    session: Session, rt: Runtime, run: Run, *, tool_call_id: str, name: str, args: dict[str, Any]
) -> str | None:
    """Run an approved side effect exactly once; without approval, open the gate and return None."""
    already = check_write(session, run_id=run.id, args=args, max_bytes=rt.settings.max_artifact_bytes)
    if already is not None:
        return already
    args_digest = digest({"tool": name, "args": args})
    approval = session.execute(
        select(Approval).where(Approval.run_id == run.id, Approval.args_sha256 == args_digest)
    ).scalar_one_or_none()
    if approval is None:
        approval = Approval(
            id=rt.ids.new("apr"),
            run_id=run.id,
            action=name,
            args=redact_data(args),
            args_sha256=args_digest,
            tool_call_id=tool_call_id,
            status="pending",
            requested_at=iso(rt.clock.now()),
        )
        session.add(approval)
        session.flush()
        append_audit(
            session,
            rt,
            actor=ACTOR,
            tenant=run.tenant_id,
            action="approval.requested",
            target=f"run/{run.id}",
            payload={"approval": approval.id, "tool": name, "args_sha256": args_digest},
        )
        transition(
            session, rt, run, RunStatus.AWAITING_APPROVAL, reason=f"{name} needs human approval", actor=ACTOR
        )
        return None
    if approval.status != "approved":
        raise PolicyViolation(f"{name} was {approval.status}; it will not run")
    effect_key = f"{run.id}:{tool_call_id}:{args_digest[:16]}"
    if session.get(SideEffect, effect_key) is not None:
        return f"{args['path']} was already written"
    session.add(SideEffect(key=effect_key, run_id=run.id, at=iso(rt.clock.now())))
    with span(
        "artifact.commit", **{"run.id": run.id, "tenant.id": run.tenant_id, "artifact.path": args["path"]}
    ):
        committed = artifacts.commit_artifact(
            session, rt, tenant_id=run.tenant_id, run_id=run.id, path=args["path"], content=args["content"]
        )
    # If this unit of work rolls back, the file is removed with its row (harness.artifacts).
    append_audit(
        session,
        rt,
        actor=ACTOR,
        tenant=run.tenant_id,
        action="artifact.committed",
        target=f"run/{run.id}",
        payload={
            "path": committed.path,
            "size": committed.size,
            "sha256": committed.sha256,
            "approval": approval.id,
        },
    )
    return f"wrote {committed.path} ({committed.size} bytes, sha256 {committed.sha256[:12]})"


def _finish(session: Session, rt: Runtime, run: Run) -> RunStatus:
    """The model answered without tool calls: the run is done, with whatever artifacts it committed."""
    transition(session, rt, run, RunStatus.SUCCEEDED, reason="model finished", actor=ACTOR)
    return RunStatus.SUCCEEDED
