"""audit log is append-only: the database refuses UPDATE and DELETE of audit rows

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
PROTECTED = ("audit_entries", "audit_checkpoints")


def upgrade() -> None:
    # The head continues the chain already stored (an upgrade of a database with entries, or a
    # downgrade-then-upgrade); genesis only for an empty log. Seeding genesis over existing rows
    # made the next append collide with seq 0 (found by the migration rollback drill).
    op.execute(
        "INSERT INTO audit_head (id, next_seq, last_hash) SELECT 1, "
        "COALESCE((SELECT MAX(seq) + 1 FROM audit_entries), 0), "
        f"COALESCE((SELECT entry_hash FROM audit_entries ORDER BY seq DESC LIMIT 1), '{GENESIS}')"
    )
    dialect = op.get_bind().dialect.name
    for table in PROTECTED:
        if dialect == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} refused'); END"
                )
        elif dialect == "postgresql":
            op.execute(
                f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
                f"BEGIN RAISE EXCEPTION '{table} is append-only: % refused', TG_OP; END; "
                "$$ LANGUAGE plpgsql"
            )
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in PROTECTED:
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
    op.execute("DELETE FROM audit_head")
