"""Throwaway databases: a SQLite file per test, or a fresh PostgreSQL schema per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    # An empty value (``HARNESS_TEST_POSTGRES_URL=``) counts as unset, not as a URL to fail on.
    return os.environ.get("HARNESS_TEST_POSTGRES_URL", "").strip() or DEFAULT_PG


def postgres_available() -> str | None:
    """None when PostgreSQL answers; otherwise the one-line reason it does not."""
    try:
        with psycopg.connect(postgres_base_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {postgres_base_url()}: {str(exc).splitlines()[0]}"
    return None


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A URL whose search_path is a brand-new schema; dropped afterwards."""
    # The schema names its environment (unit, integration, e2e, stress, drill): nothing shared.
    env = os.environ.get("HARNESS_TEST_ENV", "x")
    schema = f"t_{env}_{uuid.uuid4().hex[:12]}"
    base = postgres_base_url()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{(directory / 'harness.db').as_posix()}"
