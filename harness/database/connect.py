"""The "junk DB": engine, session factory, units of work and their bounded retry.

SQLite file under ``./.harness/`` by default (WAL, foreign keys, busy timeout, and
``BEGIN IMMEDIATE`` for write transactions so concurrent writers queue instead of failing on
lock upgrade; read-only units of work open a deferred ``BEGIN`` and never touch the write
lock); PostgreSQL (psycopg 3) or anything else by ``HARNESS_DATABASE_URL``, where read-only
units of work run ``READ ONLY``.

``in_transaction`` re-runs a whole unit of work when the database says a retry will help
(PostgreSQL serialization failure or deadlock, SQLite ``database is locked``), a bounded
number of times, and counts each retry in ``harness_db_transaction_retries_total``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import Counter
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from harness.errors import DatabaseNotMigrated
from harness.observability import REGISTRY

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Pool: one connection per concurrent request/worker thread is enough; the overflow absorbs
# bursts (uvicorn's threadpool runs up to 40 sync endpoints at once).
POOL_SIZE = 10
POOL_OVERFLOW = 30
TRANSACTION_ATTEMPTS = 5
_READ_ONLY = "harness_read_only"
# PostgreSQL: serialization_failure, deadlock_detected. SQLite: SQLITE_BUSY surfaced as text.
_RETRYABLE_SQLSTATES = frozenset(("40001", "40P01"))

DB_TRANSACTION_RETRIES = Counter(
    "harness_db_transaction_retries",
    "Units of work re-run after a serialization failure, deadlock or locked database",
    ["reason"],
    registry=REGISTRY,
)
DB_TRANSACTION_GIVE_UPS = Counter(
    "harness_db_transaction_give_ups",
    "Units of work that still failed retryably after the last attempt",
    ["reason"],
    registry=REGISTRY,
)

T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Map bare ``postgresql://`` to the psycopg 3 driver; leave everything else alone."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url``; SQLite files get their directory created and pragmas set."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(
        url, echo=echo, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_pre_ping=True
    )
    _configure_postgres(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is off; we emit BEGIN IMMEDIATE ourselves below.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(_READ_ONLY):
            # A snapshot read: never queues on (or holds) the write lock.
            conn.exec_driver_sql("BEGIN")
        else:
            # Take the write lock up front: read-then-write transactions never deadlock on upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _configure_postgres(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(_READ_ONLY):
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)


@contextmanager
def unit_of_work(factory: sessionmaker[Session], *, read_only: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception.

    ``read_only`` units (authentication, GETs) open a deferred transaction on SQLite, so they
    run beside writers instead of queueing on the write lock, and ``READ ONLY`` on PostgreSQL;
    a write inside one fails (SQLite upgrades the lock lazily and may answer busy, PostgreSQL
    refuses), so use it only where nothing is written.
    """
    session = factory()
    try:
        with session.begin():
            if read_only:
                session.connection(execution_options={_READ_ONLY: True})
            yield session
    finally:
        session.close()


def retry_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is worth re-running the whole unit of work for, or None if it is not."""
    if not isinstance(exc, DBAPIError):
        return None
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return "serialization_failure" if sqlstate == "40001" else "deadlock"
    if "database is locked" in str(exc.orig) or "database table is locked" in str(exc.orig):
        return "sqlite_locked"
    return None


def in_transaction(
    factory: sessionmaker[Session],
    work: Callable[[Session], T],
    *,
    read_only: bool = False,
    attempts: int = TRANSACTION_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``work(session)`` in one unit of work, re-running it on a retryable failure.

    ``work`` must be safe to run again from the start (it is: the failed attempt rolled back).
    Backoff is short and jittered (a few ms doubling); after ``attempts`` the error propagates.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    for attempt in range(1, attempts + 1):
        try:
            with unit_of_work(factory, read_only=read_only) as session:
                return work(session)
        except DBAPIError as exc:
            reason = retry_reason(exc)
            if reason is None:
                raise
            if attempt == attempts:
                DB_TRANSACTION_GIVE_UPS.labels(reason=reason).inc()
                raise
            DB_TRANSACTION_RETRIES.labels(reason=reason).inc()
            # Jitter only spreads colliding retries; it is not part of any recorded behaviour.
            sleep(0.005 * 2 ** (attempt - 1) * (0.5 + random.random()))  # noqa: S311
    raise AssertionError("unreachable")  # the loop returns or raises


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def assert_migrated(engine: Engine) -> None:
    """Refuse to serve on a schema that is missing or behind the code's head revision."""
    from harness.database.migrate import head_revision  # lazy: alembic is heavy at import

    head = head_revision()
    current: str | None = None
    if inspect(engine).has_table("alembic_version"):
        with engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if current != head:
        state = "has no schema" if current is None else f"is at revision {current}, code needs {head}"
        raise DatabaseNotMigrated(
            f"database {engine.url.render_as_string(hide_password=True)} {state}; run `harness db upgrade`"
        )
