"""job order from a sequence on PostgreSQL (no max()+1 per enqueue); order_key indexed

Revision ID: 0004
Revises: 0003

PostgreSQL: ``jobs.order_key`` defaults to ``nextval('jobs_order_key_seq')``, so concurrent
enqueues on any number of API processes never read the table to number a job. SQLite has no
sequences and admits one writer at a time, so it keeps ``max(order_key) + 1`` computed inside
the INSERT, which the new index makes a single index probe.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_order_key", "jobs", ["order_key"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE jobs_order_key_seq OWNED BY jobs.order_key")
        op.execute("SELECT setval('jobs_order_key_seq', COALESCE(MAX(order_key), 0) + 1, false) FROM jobs")
        op.execute("ALTER TABLE jobs ALTER COLUMN order_key SET DEFAULT nextval('jobs_order_key_seq')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE jobs ALTER COLUMN order_key DROP DEFAULT")
        op.execute("DROP SEQUENCE jobs_order_key_seq")
    op.drop_index("ix_jobs_order_key", table_name="jobs")
