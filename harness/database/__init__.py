"""Persistence: engine/session factory (``connect``), ORM models, Alembic migrations."""
