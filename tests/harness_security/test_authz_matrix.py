"""Security regression set: authn/authz bypass attempts across every harness endpoint.

Each endpoint is called with every kind of bad credential against a victim run built
through the real flow (submitted, approved, SUCCEEDED with ``report.md``). Every refusal
has an exact status, changes no row, and a caller from another tenant gets back nothing
that depends on the victim run: its 404 is byte-identical to the 404 for an id that was
never issued, once the caller's own echoed id is masked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from harness.accounts import issue_key
from tests.support.api import World, world
from tests.support.security import (
    QUARTERLY_TASK,
    VictimRun,
    assert_problem,
    assert_unauthorized,
    bearer,
    db_counts,
    finished_run,
    malformed_headers,
    masked,
    missing_id_like,
    revoked_token,
    run_status,
    well_formed_unknown_token,
)

pytestmark = [pytest.mark.tier1, pytest.mark.security]


@dataclass(frozen=True)
class Endpoint:
    name: str
    call: Callable[[World, dict[str, str], str], Any]  # (world, headers, run_id) -> response
    run_scoped: bool


def _submit(w: World, headers: dict[str, str], run_id: str) -> Any:
    return w.client.post("/api/harness/run", json={"task": QUARTERLY_TASK}, headers=headers)


def _approve(w: World, headers: dict[str, str], run_id: str) -> Any:
    body = w.decision(run_id, "approve", "looks fine")
    return w.client.post("/api/harness/approve", json=body, headers=headers)


def _status(w: World, headers: dict[str, str], run_id: str) -> Any:
    return w.client.get(f"/api/harness/runs/{run_id}", headers=headers)


def _artifact(w: World, headers: dict[str, str], run_id: str) -> Any:
    return w.client.get(f"/api/harness/runs/{run_id}/artifacts/report.md", headers=headers)


ENDPOINTS = [
    Endpoint("POST /run", _submit, run_scoped=False),
    Endpoint("POST /approve", _approve, run_scoped=True),
    Endpoint("GET /runs/{id}", _status, run_scoped=True),
    Endpoint("GET /runs/{id}/artifacts/{path}", _artifact, run_scoped=True),
]
ENDPOINT_IDS = [e.name for e in ENDPOINTS]

# Keys of the victim's own tenant whose roles do not grant the endpoint's action.
WRONG_ROLES = {
    "POST /run": ["bob", "carol", "root"],  # approver-only, auditor-only, admin-only
    "POST /approve": ["alice", "carol", "root"],  # submitter, auditor, admin
    "GET /runs/{id}": ["root"],  # every other role may read runs
    "GET /runs/{id}/artifacts/{path}": ["root"],
}


@dataclass
class Scene:
    w: World
    victim: VictimRun
    revoked: str


@pytest.fixture
def scene(make_runtime: Any, database_url: str) -> Iterator[Scene]:
    # generous limits: this file is about authz; rate limiting has its own test file
    with world(
        make_runtime,
        database_url,
        rate_limit_per_key="10000/minute",
        rate_limit_per_tenant="10000/minute",
        auth_failures_per_address="10000/minute",
    ) as w:
        w.keys["root"] = issue_key(w.rt, tenant_id="acme", name="root", roles=["admin"])
        victim = finished_run(w, submitter="alice", approver="bob")
        # a key that could do everything in acme, were it not revoked
        revoked = revoked_token(w, "acme", ["submitter", "approver", "auditor", "admin"])
        yield Scene(w, victim, revoked)


def _unauthenticated_variants(s: Scene) -> dict[str, dict[str, str]]:
    variants: dict[str, dict[str, str]] = {"anonymous": {}}
    variants.update({f"malformed:{k}": v for k, v in malformed_headers(s.w.keys["alice"].token).items()})
    variants["unknown-key"] = bearer(well_formed_unknown_token())
    variants["unknown-key-with-a-real-key-id"] = bearer(
        s.w.keys["alice"].token.rsplit("_", 1)[0] + "_" + "a" * 48
    )
    variants["revoked-key"] = bearer(s.revoked)
    return variants


def _refused_without_side_effects(s: Scene, endpoint: Endpoint, headers: dict[str, str]) -> Any:
    before, status_before = db_counts(s.w), run_status(s.w, s.victim.run_id)
    resp = endpoint.call(s.w, headers, s.victim.run_id)
    assert db_counts(s.w) == before, f"{endpoint.name} changed the database while refusing"
    assert run_status(s.w, s.victim.run_id) == status_before
    return resp


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_unauthenticated_callers_get_401_problem_with_challenge(scene: Scene, endpoint: Endpoint) -> None:
    for variant, headers in _unauthenticated_variants(scene).items():
        resp = _refused_without_side_effects(scene, endpoint, headers)
        assert resp.status_code == 401, f"{endpoint.name} / {variant}: {resp.status_code} {resp.text}"
        assert_unauthorized(resp)
        for private in scene.victim.private_strings():
            assert private not in resp.text, f"{endpoint.name} / {variant} leaked {private!r}"


def test_refusals_do_not_reveal_why_a_key_failed(scene: Scene) -> None:
    """accounts.authenticate promises "every failure is the same 401 to the caller": a revoked
    key must not be told apart from one never issued (that would confirm a leaked key was real)."""
    for endpoint in ENDPOINTS:
        bodies = {
            variant: endpoint.call(scene.w, headers, scene.victim.run_id).content
            for variant, headers in _unauthenticated_variants(scene).items()
        }
        distinct = {body: variant for variant, body in bodies.items()}
        assert len(distinct) == 1, f"{endpoint.name}: 401 bodies differ by cause:\n" + "\n".join(
            f"  {variant}: {body.decode()}" for body, variant in distinct.items()
        )


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_wrong_role_gets_403_and_changes_nothing(scene: Scene, endpoint: Endpoint) -> None:
    for who in WRONG_ROLES[endpoint.name]:
        resp = _refused_without_side_effects(scene, endpoint, scene.w.headers(who))
        assert resp.status_code == 403, f"{endpoint.name} as {who}: {resp.status_code} {resp.text}"
        assert_problem(resp, 403, "forbidden")


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.run_scoped], ids=ENDPOINT_IDS[1:])
def test_other_tenant_gets_404_with_zero_cross_tenant_bytes(scene: Scene, endpoint: Endpoint) -> None:
    victim = scene.victim
    never_issued = missing_id_like(victim.run_id)
    gina = scene.w.headers("gina")  # submitter + approver, but of globex

    probe = _refused_without_side_effects(scene, endpoint, gina)
    baseline = endpoint.call(scene.w, gina, never_issued)

    assert_problem(probe, 404, "not-found")
    assert_problem(baseline, 404, "not-found")
    # Everything in the answer is either constant or the caller's own echoed id: mask the
    # echo and the probe of a real foreign run must be the probe of a run that never existed.
    assert masked(probe.content, {victim.run_id: "<id>"}) == masked(baseline.content, {never_issued: "<id>"})
    assert dict(probe.headers) == dict(baseline.headers)
    for private in victim.private_strings():
        assert private not in probe.text, f"{endpoint.name} leaked {private!r} across tenants"


def test_victim_is_intact_and_readable_by_its_own_tenant(scene: Scene) -> None:
    """The refusals above refused the attacker, not the owner: the fixture run is real."""
    view = _status(scene.w, scene.w.headers("carol"), scene.victim.run_id)
    assert view.status_code == 200
    assert view.json()["status"] == "SUCCEEDED"
    artifact = _artifact(scene.w, scene.w.headers("carol"), scene.victim.run_id)
    assert artifact.status_code == 200
    assert artifact.text == scene.victim.artifact_content
