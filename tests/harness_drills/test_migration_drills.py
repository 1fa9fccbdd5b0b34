"""Release drills for the schema: downgrade one revision and back with data, and an upgrade of a
database written at the previous migration head, served by the new code.

Both are generic over the migration history: "head" and "one before head" come from Alembic, so
a migration added later is drilled the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import Integer, MetaData, delete, func, insert, inspect, select

from harness.app import create_app
from harness.audit import verify_log
from harness.database.connect import create_db_engine, unit_of_work
from harness.database.migrate import alembic_config, head_revision, upgrade
from harness.database.models import AuditEntry, Run
from harness.providers.openai_client import OpenAIChatClient
from harness.runs.state import RunStatus
from tests.support.api import World, decision_body, world
from tests.support.db import postgres_schema_url
from tests.support.factories import Factories

pytestmark = [pytest.mark.tier3, pytest.mark.timeout(600)]

SEEDED_BY_MIGRATIONS = {"alembic_version", "audit_head"}
# A table the older schema already has and already seeded (when it was empty): it takes the
# copied database's row instead, as it would hold in a real database written at that head.
RESEEDED_WHEN_PRESENT = {"audit_head"}
TASK = {"task": "Write the quarterly report from sales.csv"}


def _alembic(url: str, verb: str, revision: str) -> None:
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            config = alembic_config(url)
            config.attributes["connection"] = conn
            getattr(command, verb)(config, revision)
    finally:
        engine.dispose()


def _previous_head() -> str:
    script = ScriptDirectory.from_config(alembic_config())
    previous = script.get_revision(head_revision()).down_revision
    assert isinstance(previous, str), "the drill needs a linear history with at least two revisions"
    return previous


def _current(url: str) -> str | None:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one_or_none()
    finally:
        engine.dispose()


def _state(rt: Any) -> tuple[dict[str, str], int]:
    with unit_of_work(rt.sessions) as s:
        runs = {r.id: r.status for r in s.execute(select(Run)).scalars()}
        audit = int(s.execute(select(func.count()).select_from(AuditEntry)).scalar_one())
    return runs, audit


@pytest.fixture
def w(make_runtime: Any, database_url: str) -> Iterator[World]:
    with world(make_runtime, database_url) as it:
        yield it


def test_downgrade_one_revision_and_upgrade_again_loses_nothing(w: World) -> None:
    f = Factories(w.rt)
    for status in RunStatus:
        f.run(f.principal("acme"), status=status)
    waiting = w.post("run", "alice", TASK).json()["run_id"]
    w.drain()
    url = w.rt.settings.database_url or ""
    before = _state(w.rt)
    assert before[0][waiting] == "AWAITING_APPROVAL" and before[1] > 0

    _alembic(url, "downgrade", "-1")
    assert _current(url) == _previous_head()
    _alembic(url, "upgrade", "head")
    assert _current(url) == head_revision()

    assert _state(w.rt) == before
    assert verify_log(w.rt).ok
    decided = w.post("approve", "bob", w.decision(waiting, "approve", "drill"))
    assert decided.status_code == 200, decided.text
    w.drain()
    assert w.get(f"runs/{waiting}", "alice").json()["status"] == "SUCCEEDED"
    assert verify_log(w.rt).ok


def _copy_rows(source_url: str, target_url: str) -> None:
    """Copy every row into the older schema, column by column where the column exists there."""
    src, dst = create_db_engine(source_url), create_db_engine(target_url)
    try:
        new, old = MetaData(), MetaData()
        new.reflect(src)
        old.reflect(dst)
        with src.connect() as read, dst.begin() as write:
            if dst.dialect.name == "sqlite":
                write.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for table in new.sorted_tables:
                # audit_head's single row is seeded by migration 0002 from the stored entries
                if table.name in RESEEDED_WHEN_PRESENT and table.name in old.tables:
                    write.execute(delete(old.tables[table.name]))
                elif table.name in SEEDED_BY_MIGRATIONS or table.name not in old.tables:
                    continue
                keep = [c.name for c in old.tables[table.name].columns if c.name in table.columns]
                rows = [dict(r._mapping) for r in read.execute(select(*[table.c[k] for k in keep]))]
                if rows:
                    write.execute(insert(old.tables[table.name]), rows)
            if dst.dialect.name == "postgresql":  # copied ids do not move the sequences (pg_dump would)
                for table in old.sorted_tables:
                    for column in [c for c in table.columns if isinstance(c.type, Integer)]:
                        write.exec_driver_sql(
                            f"SELECT setval(seq, (SELECT COALESCE(MAX({column.name}), 0) + 1 "
                            f"FROM {table.name}), false) FROM pg_get_serial_sequence("
                            f"'{table.name}', '{column.name}') AS seq WHERE seq IS NOT NULL"
                        )
    finally:
        src.dispose()
        dst.dispose()


def test_a_database_written_at_the_previous_head_is_served_by_the_new_code(
    w: World, make_runtime: Any, tmp_path: Path, database_url: str
) -> None:
    f = Factories(w.rt)
    for status in RunStatus:
        f.run(f.principal("acme"), status=status)
    waiting = w.post("run", "alice", TASK).json()["run_id"]
    w.drain()
    runs, audit = _state(w.rt)

    with ExitStack() as stack:
        if database_url.startswith("sqlite"):
            old_url = f"sqlite:///{(tmp_path / 'previous-head.db').as_posix()}"
        else:
            old_url = stack.enter_context(postgres_schema_url())
        _serve_previous_head_database(w, make_runtime, old_url, waiting, runs, audit)


def _serve_previous_head_database(
    w: World, make_runtime: Any, old_url: str, waiting: str, runs: dict[str, str], audit: int
) -> None:
    upgrade(old_url, _previous_head())
    engine = create_db_engine(old_url)
    assert "runs" in inspect(engine).get_table_names()
    engine.dispose()
    _copy_rows(w.rt.settings.database_url or "", old_url)

    upgrade(old_url)  # what `harness db upgrade` does on deploy
    assert _current(old_url) == head_revision()
    rt = make_runtime(old_url, providers=[_fresh_client(w)])
    assert _state(rt) == (runs, audit)
    assert verify_log(rt).ok
    with TestClient(create_app(runtime=rt), raise_server_exceptions=False) as client:
        auth = {"Authorization": f"Bearer {w.keys['alice'].token}"}
        view = client.get(f"/api/harness/runs/{waiting}", headers=auth)
        assert view.status_code == 200 and view.json()["status"] == "AWAITING_APPROVAL", view.text
        bob = {"Authorization": f"Bearer {w.keys['bob'].token}"}
        decided = client.post(
            "/api/harness/approve",
            json=decision_body(rt, waiting, "approve", "drill"),
            headers=bob,
        )
        assert decided.status_code == 200, decided.text
    rt.close()  # before the second database is dropped


def _fresh_client(w: World) -> OpenAIChatClient:
    """A new client on the same simulator: a runtime closes the clients it was given."""
    return OpenAIChatClient(base_url=w.sim.base_url, api_key="sk-sim-test", timeout=10)
