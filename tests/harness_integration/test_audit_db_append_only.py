"""The database itself refuses to edit the audit log: UPDATE, DELETE and TRUNCATE of
``audit_entries`` and ``audit_checkpoints`` abort with the trigger's message, on SQLite and
PostgreSQL, by raw SQL and through the ORM, while appends carry on.

The canary at the end drops the triggers (downgrade to revision 0001) and shows the very same
statements then succeed, so these tests fail if the migration stops installing them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from harness.audit import verify_log
from harness.database.connect import create_db_engine, unit_of_work
from harness.database.migrate import alembic_config
from harness.database.models import AuditCheckpoint, AuditEntry
from harness.integrity import Ed25519Signer, write_private_key_pem
from harness.runtime import Runtime

pytestmark = [pytest.mark.tier1, pytest.mark.security]

TABLES = {"audit_entries": "seq", "audit_checkpoints": "tree_size"}
EDITS = {
    "update one": "UPDATE {table} SET {key} = {key} + 1000 WHERE {key} = (SELECT MIN({key}) FROM {table})",
    "update all": "UPDATE {table} SET created_at = 'x'",
    "delete one": "DELETE FROM {table} WHERE {key} = (SELECT MAX({key}) FROM {table})",
    "delete all": "DELETE FROM {table}",
    "truncate": "TRUNCATE {table}",
}
VERB = {"update one": "UPDATE", "update all": "UPDATE", "delete one": "DELETE", "delete all": "DELETE"}


@pytest.fixture
def audited(
    database_url: str,
    make_runtime: Callable[..., Runtime],
    run_factory: Callable[..., str],
    tmp_path: Path,
) -> Runtime:
    """A runtime whose log holds a few real entries and signed checkpoints."""
    signer = Ed25519Signer.generate()
    write_private_key_pem(tmp_path / "audit.pem", signer.private_key)
    rt = make_runtime(database_url, audit_signing_key=tmp_path / "audit.pem", audit_checkpoint_every=2)
    run_factory(rt)
    run_factory(rt)
    assert _count(rt.engine, "audit_entries") >= 4
    assert _count(rt.engine, "audit_checkpoints") >= 2
    return rt


def _statement(edit: str, table: str) -> str:
    sql = EDITS[edit].format(table=table, key=TABLES[table])
    if edit == "update all" and table == "audit_entries":
        sql = "UPDATE audit_entries SET actor = 'mallory'"
    return sql


def _cases(engine: Engine) -> list[tuple[str, str]]:
    edits = [e for e in EDITS if e != "truncate" or engine.dialect.name == "postgresql"]
    return [(edit, table) for table in TABLES for edit in edits]


def _snapshot(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY {TABLES[table]}"))]


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def _refusal(edit: str, table: str) -> str:
    verb = VERB.get(edit, "TRUNCATE")
    return f"{table} is append-only: {verb} refused"


def test_raw_sql_edits_are_refused_and_change_nothing(audited: Runtime) -> None:
    engine = audited.engine
    before = {table: _snapshot(engine, table) for table in TABLES}
    for edit, table in _cases(engine):
        with pytest.raises(DBAPIError) as refused, engine.begin() as conn:
            conn.execute(text(_statement(edit, table)))
        assert _refusal(edit, table) in str(refused.value.orig), (edit, table)
    assert {table: _snapshot(engine, table) for table in TABLES} == before


def test_orm_edits_are_refused(audited: Runtime) -> None:
    before = {table: _snapshot(audited.engine, table) for table in TABLES}
    for model, table in ((AuditEntry, "audit_entries"), (AuditCheckpoint, "audit_checkpoints")):
        for verb in ("UPDATE", "DELETE"):
            with pytest.raises(DBAPIError) as refused, unit_of_work(audited.sessions) as session:
                row = session.execute(select(model).limit(1)).scalar_one()
                if verb == "DELETE":
                    session.delete(row)
                elif isinstance(row, AuditEntry):
                    row.actor = "mallory"
                elif isinstance(row, AuditCheckpoint):
                    row.root_hash = "f" * 64
            assert f"{table} is append-only: {verb} refused" in str(refused.value.orig)
    assert {table: _snapshot(audited.engine, table) for table in TABLES} == before


def test_appends_continue_after_refused_edits(audited: Runtime, run_factory: Callable[..., str]) -> None:
    with pytest.raises(DBAPIError), audited.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries"))
    before = _count(audited.engine, "audit_entries")
    run_factory(audited)
    with unit_of_work(audited.sessions) as session:
        after = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    assert after > before
    report = verify_log(audited)
    assert report.ok, report.message
    assert report.entries == after


def test_canary_without_the_triggers_the_same_edits_succeed(audited: Runtime, database_url: str) -> None:
    """Teeth: drop the triggers (downgrade to 0001) and every refused statement goes through."""
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            config = alembic_config(database_url)
            config.attributes["connection"] = conn
            command.downgrade(config, "0001")
        rows_before = _count(engine, "audit_entries")
        with engine.begin() as conn:
            conn.execute(text(_statement("update one", "audit_entries")))
        assert _count(engine, "audit_entries") == rows_before
        assert not verify_log(audited).ok  # the chain notices what the database let through
        for edit, table in _cases(engine):
            with engine.begin() as conn:
                conn.execute(text(_statement(edit, table)))
        assert _count(engine, "audit_entries") == 0
        assert _count(engine, "audit_checkpoints") == 0
    finally:
        engine.dispose()
