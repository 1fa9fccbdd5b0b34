"""keys belong to principals; transitions record their actor; idempotency per principal; nonces per secret

Revision ID: 0003
Revises: 0002

- ``api_keys.principal``: the person or service identity a key belongs to (four-eyes compares
  principals, not keys). Existing keys are mapped one to one: principal = key name.
- ``run_transitions.actor``: who made each transition (a key id, ``orchestrator``, ``cli``).
  Rows written before this revision did not record it and get ``unrecorded``.
- ``idempotency_keys``: the primary key becomes (tenant_id, principal, key). Completed rows are
  carried over under the principal that submitted their run; in-flight claims are dropped
  (their request never finished, so the client retries anyway).
- ``nonces.key_id`` becomes ``nonces.scope``: a nonce is single-use per signing secret (the
  scope is the secret's fingerprint), not per bearer key. Old rows keep their value; they
  expire within two signature windows.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UNRECORDED = "unrecorded"


def _idempotency_table(name: str, *, with_principal: bool) -> sa.Table:
    columns: list[Any] = [sa.Column("tenant_id", sa.String(64), nullable=False)]
    if with_principal:
        columns.append(sa.Column("principal", sa.String(200), nullable=False))
    columns += [
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
    ]
    pk = ("tenant_id", "principal", "key") if with_principal else ("tenant_id", "key")
    return sa.Table(name, sa.MetaData(), *columns, sa.PrimaryKeyConstraint(*pk, name=f"pk_{name}"))


def _rebuild_idempotency(*, with_principal: bool) -> None:
    bind = op.get_bind()
    old = _idempotency_table("idempotency_keys", with_principal=not with_principal)
    rows = [dict(r._mapping) for r in bind.execute(sa.select(old))]
    owners: dict[str, str] = {}
    if with_principal:
        found = bind.execute(
            sa.text("SELECT r.id, k.principal FROM runs r JOIN api_keys k ON k.id = r.submitted_by")
        )
        owners = {run_id: principal for run_id, principal in found}
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    new = _idempotency_table("idempotency_keys", with_principal=with_principal)
    new.create(bind)
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    carried: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in rows:
        body = row["response_body"]
        if isinstance(body, str):
            body = json.loads(body)
        if with_principal:
            owner = owners.get(str((body or {}).get("run_id", "")))
            if row["state"] != "completed" or owner is None:
                continue
            row["principal"] = owner
            carried[(row["tenant_id"], owner, row["key"])] = row
        else:
            row.pop("principal", None)
            carried.setdefault((row["tenant_id"], row["key"]), row)
    if carried:
        bind.execute(new.insert(), list(carried.values()))


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Plain ALTER TABLE ... ADD COLUMN (NOT NULL needs a default there): a batch "move and copy"
    # of api_keys would trip the foreign keys of runs that point at it.
    op.add_column("api_keys", sa.Column("principal", sa.String(200), nullable=False, server_default=""))
    op.execute("UPDATE api_keys SET principal = name")
    if not sqlite:  # SQLite cannot drop a default in place; the ORM always sets the column anyway
        op.alter_column("api_keys", "principal", server_default=None)
    op.create_index("ix_api_keys_tenant_principal", "api_keys", ["tenant_id", "principal"])

    op.add_column(
        "run_transitions", sa.Column("actor", sa.String(100), nullable=False, server_default=UNRECORDED)
    )
    if not sqlite:
        op.alter_column("run_transitions", "actor", server_default=None)

    _rebuild_idempotency(with_principal=True)

    if sqlite:
        op.execute("ALTER TABLE nonces RENAME COLUMN key_id TO scope")
    else:
        op.alter_column("nonces", "key_id", new_column_name="scope")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("ALTER TABLE nonces RENAME COLUMN scope TO key_id")
    else:
        op.alter_column("nonces", "scope", new_column_name="key_id")
    _rebuild_idempotency(with_principal=False)
    op.drop_index("ix_api_keys_tenant_principal", table_name="api_keys")
    if sqlite:  # native DROP COLUMN (SQLite >= 3.35): no table copy, so no foreign-key trouble
        op.execute("ALTER TABLE run_transitions DROP COLUMN actor")
        op.execute("ALTER TABLE api_keys DROP COLUMN principal")
    else:
        op.drop_column("run_transitions", "actor")
        op.drop_column("api_keys", "principal")
