"""Migration 0003 maps what exists: key principal = key name, old transitions' actor = unrecorded,
completed idempotency keys move under the principal who submitted their run; and it downgrades."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from harness.database.connect import normalise_url
from harness.database.migrate import upgrade

pytestmark = [pytest.mark.tier1]

T = "2026-01-01T00:00:00Z"


def test_upgrade_maps_existing_rows_and_downgrade_restores_the_old_shape(database_url: str) -> None:
    from alembic import command

    from harness.database.migrate import alembic_config

    def run(fn: object, revision: str) -> None:
        engine = create_engine(normalise_url(database_url))
        try:
            with engine.begin() as conn:
                config = alembic_config(database_url)
                config.attributes["connection"] = conn
                fn(config, revision)  # type: ignore[operator]
        finally:
            engine.dispose()

    run(command.downgrade, "0002")
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.begin() as conn:
            conn.execute(text(f"INSERT INTO tenants VALUES ('acme', 'Acme', '{{}}', '{T}')"))
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, tenant_id, name, key_hash, roles, created_at)"
                    f" VALUES ('key_a', 'acme', 'alice', '{'a' * 64}', '[\"submitter\"]', '{T}')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO runs (id, tenant_id, submitted_by, task, model, tools, seed, status,"
                    f" tokens_used, created_at, updated_at) VALUES ('run_1', 'acme', 'key_a', 't', 'm',"
                    f" '[]', 7, 'RUNNING', 0, '{T}', '{T}')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO run_transitions (run_id, seq, from_status, to_status, reason, at)"
                    f" VALUES ('run_1', 0, 'PENDING', 'RUNNING', 'start', '{T}')"
                )
            )
            for key, state, body in (
                ("done", "completed", '{"run_id": "run_1"}'),
                ("stuck", "in_flight", None),
            ):
                conn.execute(
                    text(
                        "INSERT INTO idempotency_keys (tenant_id, key, request_digest, state,"
                        " response_status, response_body, created_at, expires_at)"
                        " VALUES ('acme', :key, :digest, :state, :status, :body, :t, :t)"
                    ),
                    {
                        "key": key,
                        "digest": "d" * 64,
                        "state": state,
                        "status": 202 if body else None,
                        "body": body,
                        "t": T,
                    },
                )
            conn.execute(text(f"INSERT INTO nonces (key_id, nonce, seen_at) VALUES ('key_a', 'n1', '{T}')"))

        upgrade(database_url)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT name, principal FROM api_keys")).all() == [("alice", "alice")]
            assert conn.execute(text("SELECT actor FROM run_transitions")).all() == [("unrecorded",)]
            assert conn.execute(
                text("SELECT tenant_id, principal, key, state FROM idempotency_keys")
            ).all() == [("acme", "alice", "done", "completed")]
            assert conn.execute(text("SELECT scope, nonce FROM nonces")).all() == [("key_a", "n1")]

        run(command.downgrade, "0002")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT tenant_id, key FROM idempotency_keys")).all() == [
                ("acme", "done")
            ]
            assert conn.execute(text("SELECT key_id FROM nonces")).all() == [("key_a",)]
        upgrade(database_url)
    finally:
        engine.dispose()
