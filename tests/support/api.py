"""An in-process API world: runtime + app + TestClient + tenants/keys + the provider simulator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from harness.accounts import IssuedKey, create_tenant, issue_key
from harness.app import create_app
from harness.jobs.worker import drain
from harness.providers.openai_client import OpenAIChatClient
from harness.runtime import Runtime
from replay.provider_sim import SimulatorHandle, start_simulator

JOURNEY_SCRIPT = Path(__file__).resolve().parent.parent / "harness_e2e" / "data" / "journey_script.yaml"


@dataclass
class World:
    rt: Runtime
    client: TestClient
    sim: SimulatorHandle
    keys: dict[str, IssuedKey] = field(default_factory=dict)

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who].token}", **extra}

    def post(self, path: str, who: str, body: Any, **headers: str) -> Any:
        return self.client.post(f"/api/harness/{path}", json=body, headers=self.headers(who, **headers))

    def get(self, path: str, who: str) -> Any:
        return self.client.get(f"/api/harness/{path}", headers=self.headers(who))

    def decision(self, run_id: str, decision: str = "approve", reason: str = "ok") -> dict[str, str]:
        """A POST /approve body naming the action pending now (as GET /runs/{id} shows it)."""
        return decision_body(self.rt, run_id, decision, reason)

    def drain(self) -> int:
        return drain(self.rt)

    def add_tenant(
        self, tenant_id: str, keys: dict[str, list[str]], files: dict[str, str] | None = None
    ) -> None:
        create_tenant(self.rt, tenant_id=tenant_id, name=tenant_id.title())
        for name, roles in keys.items():
            self.keys[name] = issue_key(self.rt, tenant_id=tenant_id, name=name, roles=roles)
        root = self.rt.settings.tenant_files_dir / tenant_id
        for rel, text in (files or {}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)


def decision_body(rt: Runtime, run_id: str, decision: str = "approve", reason: str = "ok") -> dict[str, str]:
    """The decision body for the run's pending approval; placeholders when nothing is pending."""
    from sqlalchemy import select

    from harness.database.connect import unit_of_work
    from harness.database.models import Approval

    with unit_of_work(rt.sessions) as session:
        pending = session.execute(
            select(Approval).where(Approval.run_id == run_id, Approval.status == "pending")
        ).scalar_one_or_none()
        approval_id, args_sha256 = (pending.id, pending.args_sha256) if pending else ("apr_none", "0" * 64)
    return {
        "run_id": run_id,
        "decision": decision,
        "reason": reason,
        "approval_id": approval_id,
        "args_sha256": args_sha256,
    }


@contextmanager
def world(
    make_runtime: Any, database_url: str, *, script: Path = JOURNEY_SCRIPT, **settings: Any
) -> Iterator[World]:
    """acme (alice submitter, bob approver, carol auditor, dave both) and globex (gina both)."""
    with start_simulator(script) as sim:
        provider = OpenAIChatClient(base_url=sim.base_url, api_key="sk-sim-test", timeout=10)
        rt = make_runtime(database_url, providers=[provider], **settings)
        with TestClient(create_app(runtime=rt), raise_server_exceptions=False) as client:
            w = World(rt=rt, client=client, sim=sim)
            w.add_tenant(
                "acme",
                {
                    "alice": ["submitter"],
                    "bob": ["approver"],
                    "carol": ["auditor"],
                    "dave": ["submitter", "approver"],
                },
                files={"sales.csv": "region,amount\nNorth,120\nSouth,80\n"},
            )
            w.add_tenant(
                "globex",
                {"gina": ["submitter", "approver"]},
                files={"secret-plans.txt": "globex confidential"},
            )
            yield w
