"""Fixtures for the whole suite: every DB test runs on SQLite and on PostgreSQL.

Also the suite's gates: the session refuses to start with a real-looking provider key in
its environment, the run fails when a test does not carry exactly one tier marker, and
every test gets the workspace of its environment (unit, integration, e2e, stress, drill).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gates import tiers
from gates.pytest_gates import pytest_collection_modifyitems, pytest_configure
from harness.clock import RecordingSleeper
from harness.database.migrate import upgrade
from harness.events import CollectingSink
from harness.runtime import Runtime, build_runtime
from harness.settings import Settings
from tests.support.db import postgres_available, postgres_schema_url, sqlite_url


@pytest.fixture(autouse=True)
def _isolated_environment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A workspace of the test's environment; nothing falls back to the shared ./.harness."""
    env = tiers.environment_of(request.node)
    workspace = tmp_path_factory.mktemp(f"{env}-workspace")
    monkeypatch.setenv("HARNESS_DATA_DIR", str(workspace / ".harness"))
    monkeypatch.setenv("HARNESS_TEST_ENV", env)
    yield workspace


__all__ = ["pytest_collection_modifyitems", "pytest_configure"]  # the suite's gates, as hooks

_PG_REASON: str | None = None
_PG_CHECKED = False


def _pg_reason() -> str | None:
    global _PG_CHECKED, _PG_REASON
    if not _PG_CHECKED:
        _PG_REASON, _PG_CHECKED = postgres_available(), True
    return _PG_REASON


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        upgrade(url)
        yield url
        return
    reason = _pg_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have PostgreSQL: {reason}")
        pytest.skip(reason)
    with postgres_schema_url() as url:
        upgrade(url)
        yield url


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path)
    upgrade(url)
    return url


RuntimeFactory = Callable[..., Runtime]


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[RuntimeFactory]:
    """Build runtimes on a given database; closed at teardown."""
    built: list[Runtime] = []

    def factory(database_url: str, **overrides: Any) -> Runtime:
        providers = overrides.pop("providers", None)
        sink = overrides.pop("sink", None) or CollectingSink()
        settings = Settings(
            data_dir=tmp_path / ".harness",
            database_url=database_url,
            seed=overrides.pop("seed", 1234),
            **overrides,
        )
        rt = build_runtime(settings, sleeper=RecordingSleeper(), sink=sink, providers=providers)
        built.append(rt)
        return rt

    yield factory
    for rt in built:
        rt.close()


@pytest.fixture
def run_factory() -> Callable[..., str]:
    """Create a tenant, a submitter key and a PENDING run through the real services."""
    from harness.accounts import create_tenant, issue_key
    from harness.database.connect import unit_of_work
    from harness.runs.service import RunSpec, create_run

    counter = iter(range(10_000))

    def factory(rt: Runtime, *, task: str = "summarise the workspace", tenant: str | None = None) -> str:
        from harness.accounts import Principal

        tenant_id = tenant or f"tenant-{next(counter)}"
        from harness.database.models import Tenant

        with unit_of_work(rt.sessions) as session:
            exists = session.get(Tenant, tenant_id) is not None
        if not exists:
            create_tenant(rt, tenant_id=tenant_id, name=tenant_id)
        key = issue_key(rt, tenant_id=tenant_id, name="factory", roles=["submitter"])
        who = Principal(key_id=key.key_id, tenant_id=tenant_id, roles=frozenset(key.roles), name="factory")
        with unit_of_work(rt.sessions) as session:
            return create_run(session, rt, who, RunSpec(task=task, model=None, tools=None)).id

    return factory
