"""Security-test building blocks: credential variants, DB snapshots, victim runs, problem checks."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from harness.accounts import issue_key, revoke_key
from harness.database.connect import unit_of_work
from harness.database.models import (
    Approval,
    Artifact,
    AuditEntry,
    IdempotencyKey,
    Job,
    Run,
    RunTransition,
    SideEffect,
    Step,
)
from harness.redaction import find_secrets, is_secret_key
from tests.support.api import World

PROBLEM_MEDIA_TYPE = "application/problem+json"
WWW_AUTHENTICATE = 'Bearer realm="harness"'
QUARTERLY_TASK = "Write the quarterly report from sales.csv"
QUARTERLY_REPORT = "# Quarterly report\n\nNorth: 120\nSouth: 80\nTotal: 200\n"
_COUNTED = (Run, RunTransition, Step, Approval, Artifact, AuditEntry, Job, SideEffect, IdempotencyKey)


REFUSAL_AUDIT_ACTIONS = ("auth.refused", "access.denied")


def db_counts(w: World) -> dict[str, int]:
    """Row counts of every table a request could write to; the audit entries that record a
    refusal itself (401/403) are counted apart, under ``refusals_audited``."""
    with unit_of_work(w.rt.sessions) as session:
        counts = {
            model.__tablename__: session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in _COUNTED
        }
        refusals = session.execute(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action.in_(REFUSAL_AUDIT_ACTIONS))
        ).scalar_one()
    counts[AuditEntry.__tablename__] -= refusals
    return counts


def run_status(w: World, run_id: str) -> str:
    with unit_of_work(w.rt.sessions) as session:
        return session.get_one(Run, run_id).status


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def well_formed_unknown_token(fill: str = "0") -> str:
    """A token of the right shape that no key was ever issued for."""
    return f"hk_{fill * 16}_{fill * 48}"


def malformed_headers(valid_token: str) -> dict[str, dict[str, str]]:
    """Authorization headers that must never authenticate, by what is wrong with them."""
    key_id = valid_token.split("_")[1]
    return {
        "wrong-shape": bearer("hk_x"),
        "bearer-missing": {"Authorization": valid_token},
        "basic-scheme": {"Authorization": "Basic YWxpY2U6aHVudGVyMg=="},
        "empty": {"Authorization": ""},
        "bearer-empty": {"Authorization": "Bearer "},
        "trailing-junk": bearer(valid_token + "0"),
        "upper-case-secret": bearer(f"hk_{key_id}_{valid_token.rsplit('_', 1)[1].upper()}"),
    }


def revoked_token(w: World, tenant_id: str, roles: list[str]) -> str:
    """A key that held ``roles`` in ``tenant_id`` and has been revoked."""
    issued = issue_key(w.rt, tenant_id=tenant_id, name="revoked", roles=roles)
    revoke_key(w.rt, key_id=issued.key_id)
    return issued.token


def assert_problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    """``resp`` is an RFC 9457 problem of ``status`` and type ``code``; returns the body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["status"] == status, body
    assert body["type"].endswith("/" + code), body
    return body


def assert_unauthorized(resp: Any) -> dict[str, Any]:
    body = assert_problem(resp, 401, "unauthorized")
    assert resp.headers.get("www-authenticate") == WWW_AUTHENTICATE, resp.headers
    return body


def missing_id_like(run_id: str) -> str:
    """An id of the same shape and length as ``run_id`` that names no run."""
    prefix, _, tail = run_id.partition("_")
    return f"{prefix}_{'f' * len(tail)}" if tail != "f" * len(tail) else f"{prefix}_{'e' * len(tail)}"


@dataclass(frozen=True)
class VictimRun:
    """A finished run with an approval and an artifact: everything a cross-tenant read could leak."""

    run_id: str
    task: str
    artifact_path: str
    artifact_content: str
    view: dict[str, Any]

    def private_strings(self) -> list[str]:
        """Values the owner's tenant knows and a caller who only guessed the id must never see."""
        approval = self.view["approvals"][0]
        artifact = self.view["artifacts"][0]
        return [
            self.task,
            self.artifact_content,
            "Quarterly report",
            artifact["sha256"],
            approval["id"],
            approval["args_sha256"],
            approval["decided_by"],
            self.view["status"],
            "region,amount",
        ]


def finished_run(w: World, *, submitter: str, approver: str, task: str = QUARTERLY_TASK) -> VictimRun:
    """Submit, drain to AWAITING_APPROVAL, approve, drain to SUCCEEDED with report.md committed."""
    submitted = w.post("run", submitter, {"task": task})
    assert submitted.status_code == 202, submitted.text
    run_id = submitted.json()["run_id"]
    w.drain()
    assert run_status(w, run_id) == "AWAITING_APPROVAL"
    decided = w.post("approve", approver, w.decision(run_id, "approve", "ok"))
    assert decided.status_code == 200, decided.text
    w.drain()
    view = w.get(f"runs/{run_id}", submitter).json()
    assert view["status"] == "SUCCEEDED", view
    assert [a["path"] for a in view["artifacts"]] == ["report.md"]
    return VictimRun(run_id, task, "report.md", QUARTERLY_REPORT, view)


def masked(raw: bytes, replacements: Mapping[str, str]) -> bytes:
    """``raw`` with each key replaced by its value (used to compare echoes of caller input)."""
    for old, new in replacements.items():
        raw = raw.replace(old.encode(), new.encode())
    return raw


def burst(send: Callable[[], Any], n: int) -> list[Any]:
    """``n`` requests back to back, as one abusive client would send them."""
    return [send() for _ in range(n)]


# --- secret scanning --------------------------------------------------------------------------

_MARKER_PREFIX = "[REDACTED:"


def _is_marker_only(value: str) -> bool:
    return value.startswith(_MARKER_PREFIX) and value.endswith("]") and value.count("]") == 1


def secret_findings(text: str) -> list[str]:
    """``type: excerpt`` for every secret find_secrets reports in ``text``."""
    return [f"{f.type}: {text[f.start : f.end][:60]!r}" for f in find_secrets(text)]


def scan_data(value: Any, where: str = "$") -> list[str]:
    """Secret findings in JSON-like data, string by string (as redact_data sees it: no proximity
    across fields), plus any unredacted value stored under a secret-named key."""
    if isinstance(value, str):
        return [f"{where}: {finding}" for finding in secret_findings(value)]
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            found.extend(scan_data(str(key), f"{where}.<key>"))
            if is_secret_key(str(key)) and isinstance(item, str) and item and not _is_marker_only(item):
                found.append(f"{where}.{key}: unredacted value under a secret-named key")
            else:
                found.extend(scan_data(item, f"{where}.{key}"))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found.extend(scan_data(item, f"{where}[{i}]"))
    return found


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
