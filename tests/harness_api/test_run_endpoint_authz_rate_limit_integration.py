"""Test plan: an unauthenticated or over-limit caller hits POST /api/harness/run.

Auth middleware -> rate limiter -> run controller, through the real app: a burst over the
per-key limit is cut at exactly the limit with 429 problem+json and Retry-After, the
per-tenant limit is shared by the tenant's keys and by nobody else, and callers that fail
authentication are refused before they can spend anybody's budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest

from tests.support.api import World, world
from tests.support.security import (
    assert_problem,
    assert_unauthorized,
    bearer,
    burst,
    db_counts,
    malformed_headers,
    revoked_token,
    well_formed_unknown_token,
)

pytestmark = [pytest.mark.tier1, pytest.mark.security]

PER_KEY = 5
PER_TENANT = 8
WINDOW_SECONDS = 60
TASK = {"task": "Summarise the workspace"}


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(
        make_runtime,
        database_url,
        rate_limit_per_key=f"{PER_KEY}/minute",
        rate_limit_per_tenant=f"{PER_TENANT}/minute",
        # These tests are about key and tenant budgets; the per-address limit on failed
        # authentication (which all in-process clients share) is tested in test_auth_failures.py.
        auth_failures_per_address="100000/minute",
    ) as it:
        yield it


def _submit(w: World, who: str) -> Any:
    return w.post("run", who, TASK)


def _anonymous_submit(w: World, headers: dict[str, str]) -> Any:
    return w.client.post("/api/harness/run", json=TASK, headers=headers)


def _assert_rate_limited(resp: Any, scope: str) -> None:
    body = assert_problem(resp, 429, "rate-limited")
    retry_after = int(resp.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW_SECONDS
    assert body["retry_after"] == retry_after
    assert f"exceeded for {scope}" in body["detail"]


def _statuses(responses: list[Any]) -> list[int]:
    return [r.status_code for r in responses]


def test_burst_over_the_per_key_limit_is_cut_at_the_limit(w: World) -> None:
    before = db_counts(w)
    responses = burst(lambda: _submit(w, "alice"), PER_KEY + 7)

    assert _statuses(responses) == [202] * PER_KEY + [429] * 7
    for refused in responses[PER_KEY:]:
        _assert_rate_limited(refused, "key")
    after = db_counts(w)
    accepted = {r.json()["run_id"] for r in responses[:PER_KEY]}
    assert len(accepted) == PER_KEY
    assert after["runs"] - before["runs"] == PER_KEY, "a refused request created a run"
    assert after["jobs"] - before["jobs"] == PER_KEY, "a refused request enqueued a job"
    # one audit entry per accepted run ("run.created"), none for the refusals
    assert after["audit_entries"] - before["audit_entries"] == PER_KEY


def test_concurrent_burst_admits_exactly_the_limit(w: World) -> None:
    before = db_counts(w)
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: _submit(w, "alice"), range(PER_KEY + 11)))

    assert sorted(_statuses(responses)) == [202] * PER_KEY + [429] * 11
    assert db_counts(w)["runs"] - before["runs"] == PER_KEY


def test_tenant_limit_is_shared_by_its_keys_and_no_one_else(w: World) -> None:
    alice = burst(lambda: _submit(w, "alice"), PER_KEY)
    dave = burst(lambda: _submit(w, "dave"), PER_KEY)

    assert _statuses(alice) == [202] * PER_KEY
    # dave's own key budget is untouched, but acme as a whole has PER_TENANT - PER_KEY left
    left = PER_TENANT - PER_KEY
    assert _statuses(dave) == [202] * left + [429] * (PER_KEY - left)
    for refused in dave[left:]:
        _assert_rate_limited(refused, "tenant")
    _assert_rate_limited(_submit(w, "alice"), "key")

    gina = burst(lambda: _submit(w, "gina"), PER_KEY + 1)
    assert _statuses(gina) == [202] * PER_KEY + [429], "globex paid for acme's burst"
    assert db_counts(w)["runs"] == PER_TENANT + PER_KEY


def test_unauthenticated_burst_is_refused_and_spends_no_one_budget(w: World) -> None:
    alice_token = w.keys["alice"].token
    key_id_prefix = alice_token.rsplit("_", 1)[0]
    variants: dict[str, dict[str, str]] = {
        "anonymous": {},
        **malformed_headers(alice_token),
        "unknown": bearer(well_formed_unknown_token()),
        "alice-key-id-wrong-secret": bearer(f"{key_id_prefix}_{'b' * 48}"),
        "revoked-acme-key": bearer(revoked_token(w, "acme", ["submitter"])),
    }
    before = db_counts(w)
    for name, headers in variants.items():
        for resp in burst(partial(_anonymous_submit, w, headers), 3 * PER_KEY):
            assert resp.status_code == 401, f"{name}: {resp.status_code} {resp.text}"
            assert_unauthorized(resp)
    assert db_counts(w) == before

    # acme's key and tenant budgets are whole: the attack above counted against neither
    assert _statuses(burst(lambda: _submit(w, "alice"), PER_KEY)) == [202] * PER_KEY
    left = PER_TENANT - PER_KEY
    assert _statuses(burst(lambda: _submit(w, "dave"), left)) == [202] * left
